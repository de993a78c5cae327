"""The console's shared pieces: the landing route and navigation."""
