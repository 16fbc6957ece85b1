"""Server-rendered pages: the review console, operations pages and the public transparency site."""
