"""Gateway, web chat and command line of the IP public-service assistant."""
