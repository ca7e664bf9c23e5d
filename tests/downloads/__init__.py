"""Result-file downloads against a hostile file host on 127.0.0.1."""
