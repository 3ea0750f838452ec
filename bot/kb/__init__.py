"""Knowledge-base administration: validate, import and export service points and products."""
