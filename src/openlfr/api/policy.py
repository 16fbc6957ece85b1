"""Who may call what: one table, read top to bottom, for every route the server has.

Access is denied by default: a route missing from :data:`RULES` answers 403 to everyone, and the
role × route matrix test fails until the new route is given a rule here and in the test. The
administrator runs the system (accounts, retention) but sees no biometric data; auditors read
the audit trail and aggregate records, never images.
"""

from __future__ import annotations

ADMIN = "administrator"
AUTHORISER = "authorising_officer"
OPERATOR = "operator"
REVIEWER = "reviewing_officer"
EXAMINER = "examiner"
AUDITOR = "auditor"

PUBLIC = frozenset({"public"})
ANY_STAFF = frozenset({ADMIN, AUTHORISER, OPERATOR, REVIEWER, EXAMINER, AUDITOR})
OVERSIGHT = frozenset({ADMIN, AUTHORISER, OPERATOR, REVIEWER, AUDITOR})  # deployments and their records
PLANNERS = frozenset({OPERATOR, AUTHORISER})
ALERT_VIEWERS = frozenset({AUTHORISER, OPERATOR, REVIEWER})  # may see alert images
DECIDERS = frozenset({OPERATOR, REVIEWER})  # record what happened after an alert
#: Not a person's role: a registered van, known by the TLS client certificate the centre issued it. Only
#: the sync listener (api/sync.py, its own port, client certificates required) serves these routes.
VANS = frozenset({"van"})

RULES: dict[str, frozenset[str]] = {
    # --- REST API -----------------------------------------------------------------------------
    "POST /api/v1/auth/token": PUBLIC,
    "POST /api/v1/auth/logout": ANY_STAFF,
    "GET /api/v1/me": ANY_STAFF,
    "POST /api/v1/me/tokens": ANY_STAFF,  # one's own token only, against one's own password
    "GET /api/v1/subjects": PLANNERS,
    "POST /api/v1/subjects": PLANNERS,
    "GET /api/v1/subjects/{reference}": PLANNERS,
    "GET /api/v1/subjects/{reference}/images/{image_id}": PLANNERS,
    "GET /api/v1/deployments": OVERSIGHT,
    "POST /api/v1/deployments": PLANNERS,
    "GET /api/v1/deployments/{deployment_id}": OVERSIGHT,
    "POST /api/v1/deployments/{deployment_id}/watchlist": PLANNERS,
    "POST /api/v1/deployments/{deployment_id}/watchlist/approve": frozenset({AUTHORISER}),
    "POST /api/v1/deployments/{deployment_id}/authorise": frozenset({AUTHORISER}),
    "POST /api/v1/deployments/{deployment_id}/start": PLANNERS,
    "POST /api/v1/deployments/{deployment_id}/stop": PLANNERS,
    "POST /api/v1/deployments/{deployment_id}/close": PLANNERS,
    "GET /api/v1/deployments/{deployment_id}/record": OVERSIGHT,
    "GET /api/v1/deployments/{deployment_id}/cameras": ALERT_VIEWERS,
    "POST /api/v1/deployments/{deployment_id}/cameras": PLANNERS,
    "GET /api/v1/live": frozenset({ADMIN, AUTHORISER, OPERATOR, REVIEWER}),
    "GET /api/v1/live/{deployment_id}/cameras/{camera}/view.jpg": ALERT_VIEWERS,
    "GET /api/v1/alerts": frozenset({AUTHORISER, OPERATOR, REVIEWER, AUDITOR}),
    "GET /api/v1/alerts/stream": ALERT_VIEWERS,
    "GET /api/v1/alerts/{alert_id}": frozenset({AUTHORISER, OPERATOR, REVIEWER, AUDITOR}),
    "GET /api/v1/alerts/{alert_id}/images/{kind}": ALERT_VIEWERS,
    "POST /api/v1/alerts/{alert_id}/outcome": DECIDERS,
    "POST /api/v1/alerts/{alert_id}/hold": frozenset({AUTHORISER}),
    "POST /api/v1/alerts/{alert_id}/release": frozenset({AUTHORISER}),
    "POST /api/v1/retention/run": frozenset({ADMIN, AUTHORISER}),
    "GET /api/v1/retention/log": frozenset({ADMIN, AUTHORISER, AUDITOR}),
    "GET /api/v1/retention/holds": frozenset({AUTHORISER, AUDITOR}),
    "GET /api/v1/records": OVERSIGHT,
    "GET /api/v1/audit": frozenset({AUDITOR}),
    "GET /api/v1/audit/export": frozenset({AUDITOR}),
    "GET /api/v1/audit/verify": frozenset({AUDITOR, ADMIN}),
    "GET /api/v1/users": frozenset({ADMIN}),
    "POST /api/v1/users": frozenset({ADMIN}),
    "POST /api/v1/users/{user_id}/active": frozenset({ADMIN}),
    "POST /api/v1/users/{user_id}/role": frozenset({ADMIN}),
    "POST /api/v1/users/{user_id}/unlock": frozenset({ADMIN}),
    "GET /api/v1/tokens": frozenset({ADMIN}),  # administrators list and revoke tokens, never mint them
    "DELETE /api/v1/tokens/{token_id}": frozenset({ADMIN}),
    "GET /api/v1/rfr/searches": frozenset({EXAMINER}),
    "POST /api/v1/rfr/searches": frozenset({EXAMINER}),
    "GET /api/v1/rfr/searches/{search_id}": frozenset({EXAMINER}),
    "POST /api/v1/rfr/searches/{search_id}/face": frozenset({EXAMINER}),
    "GET /api/v1/rfr/searches/{search_id}/probe/{number}": frozenset({EXAMINER}),
    "POST /api/v1/rfr/searches/{search_id}/complete": frozenset({EXAMINER}),
    "GET /api/v1/rfr/searches/{search_id}/report": frozenset({EXAMINER}),
    "GET /api/v1/rfr/candidates/{candidate_id}": frozenset({EXAMINER}),
    "GET /api/v1/rfr/candidates/{candidate_id}/image": frozenset({EXAMINER}),
    "POST /api/v1/rfr/candidates/{candidate_id}/decision": frozenset({EXAMINER}),
    "POST /api/v1/rfr/candidates/{candidate_id}/confirmation": frozenset({EXAMINER}),
    "GET /api/v1/custody/stats": frozenset({EXAMINER, ADMIN}),
    "GET /api/v1/public/deployments": PUBLIC,
    "GET /api/v1/public/records": PUBLIC,
    # The API's description names every route and parameter: staff only, not the public.
    "GET /api/v1/openapi.json": ANY_STAFF,
    "GET /api/v1/docs": ANY_STAFF,
    # --- Web pages ----------------------------------------------------------------------------
    "GET /login": PUBLIC,
    "POST /login": PUBLIC,
    "POST /logout": ANY_STAFF,
    "GET /": ANY_STAFF,
    "GET /console": ALERT_VIEWERS,
    "GET /console/alerts/{alert_id}": ALERT_VIEWERS,
    "POST /console/alerts/{alert_id}/outcome": DECIDERS,
    "GET /console/live/{deployment_id}": ALERT_VIEWERS,
    "GET /ops/subjects": PLANNERS,
    "POST /ops/subjects": PLANNERS,
    "GET /ops/deployments": OVERSIGHT,
    "POST /ops/deployments": PLANNERS,
    "GET /ops/deployments/{deployment_id}": OVERSIGHT,
    "POST /ops/deployments/{deployment_id}/watchlist": PLANNERS,
    "POST /ops/deployments/{deployment_id}/approve": frozenset({AUTHORISER}),
    "POST /ops/deployments/{deployment_id}/authorise": frozenset({AUTHORISER}),
    "POST /ops/deployments/{deployment_id}/start": PLANNERS,
    "POST /ops/deployments/{deployment_id}/stop": PLANNERS,
    "POST /ops/deployments/{deployment_id}/close": PLANNERS,
    "GET /ops/retention": frozenset({ADMIN, AUTHORISER, AUDITOR}),
    "POST /ops/retention/run": frozenset({ADMIN, AUTHORISER}),
    "POST /ops/alerts/{alert_id}/hold": frozenset({AUTHORISER}),
    "POST /ops/alerts/{alert_id}/release": frozenset({AUTHORISER}),
    "GET /ops/records": OVERSIGHT,
    "GET /audit": frozenset({AUDITOR}),
    "GET /admin/users": frozenset({ADMIN}),
    "POST /admin/users": frozenset({ADMIN}),
    "POST /admin/users/{user_id}/active": frozenset({ADMIN}),
    "POST /admin/users/{user_id}/role": frozenset({ADMIN}),
    "GET /rfr": frozenset({EXAMINER}),
    "POST /rfr/searches": frozenset({EXAMINER}),
    "GET /rfr/searches/{search_id}": frozenset({EXAMINER}),
    "POST /rfr/searches/{search_id}/face": frozenset({EXAMINER}),
    "POST /rfr/searches/{search_id}/complete": frozenset({EXAMINER}),
    "GET /rfr/candidates/{candidate_id}": frozenset({EXAMINER}),
    "POST /rfr/candidates/{candidate_id}/decision": frozenset({EXAMINER}),
    "POST /rfr/candidates/{candidate_id}/confirmation": frozenset({EXAMINER}),
    "GET /public": PUBLIC,
    "GET /public/deployments/{deployment_id}/leaflet": PUBLIC,
    "GET /public/deployments/{deployment_id}/poster": PUBLIC,
    "GET /favicon.ico": PUBLIC,
    # --- Running the node (api/health.py): probes for supervisors and proxies, and Prometheus ------
    # No personal data in any of them. /metrics shows live operational figures: keep it on the internal
    # interface, or set $OPENLFR_METRICS_TOKEN, which the route itself then requires as a bearer token.
    "GET /healthz": PUBLIC,
    "GET /readyz": PUBLIC,
    "GET /metrics": PUBLIC,
    # --- The centre's sync listener (api/routes/sync.py): vans deliver their outboxes -------------
    "GET /sync/v1/state": VANS,
    "POST /sync/v1/items": VANS,
}


def rule_for(method: str, path: str) -> frozenset[str] | None:
    return RULES.get(f"{method} {path}")
