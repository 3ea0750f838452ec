"""Custom actions of the IP public-service assistant (served by rasa-sdk's action server)."""
