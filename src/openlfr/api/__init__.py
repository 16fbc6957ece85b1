"""``openlfr serve``: the REST API (versioned under ``/api/v1``), the web console and the public site."""
