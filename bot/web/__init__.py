"""Web pieces every channel shares: typed app keys, middlewares, the origin check, health."""
