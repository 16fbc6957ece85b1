"""What each API operation is for, as its reader sees it in ``/api/v1/docs``: one table.

A summary and a description (what it does and the errors worth knowing) per ``"METHOD path"``,
kept in one place like the access policy rather than scattered over route docstrings written for
developers. :func:`openlfr.api.openapi.complete` adds to each the roles that may call it, read from
:data:`openlfr.api.policy.RULES`, so that sentence can never disagree with the policy.
``tests/test_api_docs.py`` fails for an operation without a description, or an entry without a route.
"""

from __future__ import annotations

from openlfr.api.policy import ANY_STAFF, PUBLIC
from openlfr.services.users import ROLE_LABELS, ROLES

#: ``"METHOD path"`` → (summary, description). Status codes are those of the service's rules:
#: 400 a value or image it refuses, 409 a step out of order or a clash with a stored record.
OPERATIONS: dict[str, tuple[str, str]] = {
    # --- Signing in and tokens ---------------------------------------------------------------------
    "POST /api/v1/auth/token": (
        "Sign in and get a bearer token",
        "Exchanges a username and password for a bearer token (at most 30 days) to send as "
        "`Authorization: Bearer <token>`. Wrong passwords count towards the account's lockout (5 failures "
        "lock it for 15 minutes): 401 for wrong credentials or a locked or disabled account, 429 when this "
        "address has failed too often.",
    ),
    "POST /api/v1/auth/logout": (
        "Sign out",
        "Ends the browser session, or revokes the bearer token this request was sent with, so neither works again.",
    ),
    "POST /api/v1/me/tokens": (
        "Create a token for yourself",
        "Issues a longer-lived bearer token (up to 365 days) to the caller only, against the caller's own "
        "password, so that a stolen session cannot be turned into a lasting credential. The secret is shown once. "
        "401 for a wrong password (it counts towards the lockout), 400 for a bad name, 429 after too many failures.",
    ),
    "GET /api/v1/me": (
        "Who am I",
        "The signed-in account: username, display name and role (with its readable label).",
    ),
    # --- Watchlist subjects ------------------------------------------------------------------------
    "GET /api/v1/subjects": (
        "List watchlist subjects",
        "Every watchlist subject with their category, why they are sought, where the image came from, "
        "the lawful basis, who added them and when inclusion must be reviewed.",
    ),
    "POST /api/v1/subjects": (
        "Add a watchlist subject",
        "Adds a person to the watchlist subjects from one or more reference images (multipart form) with the "
        "reason they are sought, the image's source, the lawful basis and a review date. Every image must show "
        "exactly one clear face and pass the quality limits before anything is stored (400 otherwise, naming "
        "the image); under-18s only as missing or vulnerable people, with a justification; 409 for a reference in use.",
    ),
    "GET /api/v1/subjects/{reference}": (
        "Show a watchlist subject",
        "One subject's details and the list of their reference images (without the images). 404 for an unknown reference.",
    ),
    "GET /api/v1/subjects/{reference}/images/{image_id}": (
        "Get a subject's reference image",
        "The reference image as JPEG. It is biometric data: every view is audited and the response is never "
        "cached. 404 for an unknown subject or image.",
    ),
    # --- Deployments ------------------------------------------------------------------------------
    "GET /api/v1/deployments": (
        "List deployments",
        "Every deployment with its location, planned window, status, threshold and watchlist size.",
    ),
    "POST /api/v1/deployments": (
        "Plan a deployment",
        "Plans a deployment: name, location, use case, start and end (at most 24 hours), cameras and, "
        "optionally, the alert threshold (default: the watchlist model pack's own). Cameras that cannot be "
        "opened now are marked unreachable in the answer, with the reason (a warning: going live refuses them). "
        "400 for an unknown use case, a window over 24 hours, no camera or a threshold outside 0–1.",
    ),
    "GET /api/v1/deployments/{deployment_id}": (
        "Show a deployment",
        "A deployment's plan, cameras and their state, watchlist, who planned, approved and authorised it, "
        "and its status. 404 for an unknown deployment.",
    ),
    "POST /api/v1/deployments/{deployment_id}/watchlist": (
        "Build the deployment's watchlist",
        "Copies the chosen subjects (default: every subject not past their review date) into the deployment's "
        "own watchlist, no earlier than 24 hours before its start. 409 when the watchlist is already approved, "
        "a subject is past review, or there is nobody to put on it.",
    ),
    "POST /api/v1/deployments/{deployment_id}/watchlist/approve": (
        "Approve and freeze the watchlist",
        "Approves the built watchlist, which freezes it for the deployment. The approver may not be the officer "
        "who built it (403); 409 when it is not built yet or already approved.",
    ),
    "POST /api/v1/deployments/{deployment_id}/authorise": (
        "Authorise a deployment",
        "The authorising officer's approval, with a note on why the deployment is necessary and proportionate; "
        "nothing goes live without it. The authoriser may be neither the planner nor the watchlist's builder "
        "(403). A threshold whose estimated false-alert rate is above 1 in 1,000, or without a calibration, "
        "needs an `override_reason`, which is audited (409 without one).",
    ),
    "POST /api/v1/deployments/{deployment_id}/start": (
        "Go live",
        "Starts the deployment's cameras in the server; they run until stopped or the planned end. Alerts are "
        "pushed to `GET /api/v1/alerts/stream`. Refused with the reason when a camera source cannot be opened, "
        "and with 409 when the deployment is not authorised or its window has not started or has passed.",
    ),
    "POST /api/v1/deployments/{deployment_id}/stop": (
        "Stop the cameras",
        "Stops a live deployment's cameras. The deployment stays open, so outcomes can still be recorded, "
        "until it is closed.",
    ),
    "POST /api/v1/deployments/{deployment_id}/close": (
        "Close a deployment",
        "Stops the cameras if they run, deletes the deployment's watchlist copy at once, and returns the "
        "published deployment record. 409 when it is already closed.",
    ),
    "GET /api/v1/deployments/{deployment_id}/record": (
        "Get a deployment's record",
        "The deployment record with the Met's published columns (faces seen, alerts, true and false alerts, "
        "outcomes, threshold and estimated false-alert rate), counting outcomes recorded after closing.",
    ),
    "GET /api/v1/deployments/{deployment_id}/cameras": (
        "List a deployment's cameras",
        "The deployment's cameras: name, source, whether footage is recorded, and state.",
    ),
    "POST /api/v1/deployments/{deployment_id}/cameras": (
        "Add a camera",
        "Adds a camera (video file, RTSP or HTTP stream, camera index or image folder) to a deployment "
        "that is still being planned. 409 for a camera name already used in the deployment or a deployment past planning.",
    ),
    # --- Live ---------------------------------------------------------------------------------------
    "GET /api/v1/live": (
        "Live deployments now",
        "Each deployment running in this server and its cameras: frames processed and dropped, faces seen, "
        "alerts raised, and each camera's state.",
    ),
    "GET /api/v1/live/{deployment_id}/cameras/{camera}/view.jpg": (
        "Operator's camera view",
        "The newest frame of a live camera as JPEG, with every face that raised no alert pixelated; never "
        "cached. 404 when the deployment is not live or has no such camera.",
    ),
    # --- Alerts -----------------------------------------------------------------------------------
    "GET /api/v1/alerts": (
        "List alerts",
        "Alerts, oldest first, optionally of one deployment (`deployment`) or only those awaiting an outcome "
        "(`pending=true`): subject, camera, score and threshold, time, outcome and legal hold.",
    ),
    "GET /api/v1/alerts/stream": (
        "Live alert stream",
        "New alerts as they are raised, as Server-Sent Events (`event: alert`, data = the alert as JSON); a "
        "comment line every 15 s keeps the connection open.",
    ),
    "GET /api/v1/alerts/{alert_id}": (
        "Show an alert",
        "One alert: subject, category and why they are sought, camera, score and threshold, time, sightings, "
        "outcome and legal hold. Each view is audited. 404 for an unknown alert.",
    ),
    "GET /api/v1/alerts/{alert_id}/images/{kind}": (
        "Get an alert image",
        "One of the alert's images as JPEG: `probe` (the camera crop), `frame` (the frame with bystanders "
        "pixelated) or `reference` (the watchlist image). Audited and never cached. 404 for another kind, "
        "410 once the images were deleted under the retention rules.",
    ),
    "POST /api/v1/alerts/{alert_id}/outcome": (
        "Record an alert's outcome",
        "Records what the officer decided: `no-action`, `engaged-not-person`, `engaged-confirmed`, `arrest` or "
        "`other`; for `no-action` and `other` the officer's judgement from the images (`match` or `no-match`) "
        "is required. 400 for an unknown outcome or a missing judgement; 409 when an outcome is already recorded. "
        "An arrest prompts a legal hold.",
    ),
    "POST /api/v1/alerts/{alert_id}/hold": (
        "Set a legal hold",
        "Keeps the alert's images beyond the retention period until the investigation or judicial process it "
        "is needed for concludes; the reason is required (400 without one) and audited. 409 when the images "
        "were already deleted.",
    ),
    "POST /api/v1/alerts/{alert_id}/release": (
        "Lift a legal hold",
        "Ends a legal hold, with a reason; the normal retention period applies again at once. 409 when the "
        "alert is not under a hold.",
    ),
    # --- Retention, records, audit ------------------------------------------------------------------
    "POST /api/v1/retention/run": (
        "Run retention now",
        "Deletes what is past its retention period: alert images after 31 days unless under a legal hold, "
        "recorded footage after 31 days, watchlists of closed deployments, expired search results. Every "
        "deletion is logged; running it twice is harmless.",
    ),
    "GET /api/v1/retention/log": (
        "Deletion log",
        "The newest deletions (`limit`, default 100): what kind of data, which record, when and why; never the data itself.",
    ),
    "GET /api/v1/retention/holds": (
        "Alerts under legal hold",
        "Every alert whose images are kept under a legal hold, with the reason and who set it.",
    ),
    "GET /api/v1/records": (
        "All deployment records",
        "The records of every closed deployment with the Met's published columns, as JSON or, with "
        "`format=csv`, as CSV.",
    ),
    "GET /api/v1/audit": (
        "Search the audit trail",
        "Audit events filtered by actor, action, record type and id, and time (`since`, `until`), newest "
        "first (`limit`, default 200): who did what, in what role, when, to which record and from where. "
        "The search itself is audited.",
    ),
    "GET /api/v1/audit/export": (
        "Export the audit trail",
        "The same search as a downloadable file, CSV (default) or JSON (`format=json`), up to 10,000 events. "
        "The export is audited.",
    ),
    "GET /api/v1/audit/verify": (
        "Verify the audit trail",
        "Checks the trail's HMAC chain and its anchor and reports whether it is intact or names the first "
        "event that was modified, deleted or inserted.",
    ),
    # --- Users and tokens -----------------------------------------------------------------------------
    "GET /api/v1/users": (
        "List accounts",
        "Every account: username, display name, role, whether it is active or locked, and when it last signed in.",
    ),
    "POST /api/v1/users": (
        "Create an account",
        f"Creates an account with a role ({', '.join(f'`{r}`' for r in ROLES)}) and a password of at "
        "least 12 characters. 409 for an unknown role, a short password, a malformed username or a username "
        "already in use.",
    ),
    "POST /api/v1/users/{user_id}/active": (
        "Disable or enable an account",
        "Disables an account (its sessions and tokens stop working) or enables it again. 409 when it would "
        "leave no active administrator.",
    ),
    "POST /api/v1/users/{user_id}/role": (
        "Change an account's role",
        "Gives an account another role; it takes effect on the account's next request. 409 for an unknown "
        "role or when it would leave no active administrator.",
    ),
    "POST /api/v1/users/{user_id}/unlock": (
        "Unlock an account",
        "Clears the lockout that 5 failed sign-ins set, before its 15 minutes are up.",
    ),
    "GET /api/v1/tokens": (
        "List API tokens",
        "Every bearer token: whose, its name, when it was issued, expires and was last used, and whether it "
        "is revoked. Only a hash of each token is stored; the secret is never shown again.",
    ),
    "DELETE /api/v1/tokens/{token_id}": (
        "Revoke an API token",
        "Revokes a token at once; the revocation is audited. Administrators revoke tokens but cannot "
        "issue one for another account.",
    ),
    # --- Retrospective search -------------------------------------------------------------------------
    "GET /api/v1/rfr/searches": (
        "List retrospective searches",
        "Searches of the custody image database, optionally of one case (`case`): case reference, examiner, "
        "when, status, and the candidates marked and confirmed.",
    ),
    "POST /api/v1/rfr/searches": (
        "Start a retrospective search",
        "Searches the custody images with a probe image or CCTV clip (multipart form), for a case reference "
        "and a justification, both required and audited. With several faces the examiner chooses one "
        "(`.../face`); otherwise the top `top_k` (default 20, at most 200) custody records are returned. "
        "400 for an unusable probe or a bad `top_k`.",
    ),
    "GET /api/v1/rfr/searches/{search_id}": (
        "Show a search",
        "A search and its candidates with the decisions recorded so far. A possible match awaiting the "
        "caller's independent confirmation comes without the first examiner's note.",
    ),
    "POST /api/v1/rfr/searches/{search_id}/face": (
        "Choose the probe face",
        "Chooses which of the probe's faces to search with (1-based); the faces not chosen are deleted at "
        "once, and the search runs. 400 for a face the probe does not have; 409 when the search already ran "
        "or the custody database is empty.",
    ),
    "GET /api/v1/rfr/searches/{search_id}/probe/{number}": (
        "Get a probe face",
        "Face `number` (1-based) offered from the probe as JPEG, or once chosen the probe face (number 1); "
        "never cached. 404 for a number the search does not have.",
    ),
    "POST /api/v1/rfr/searches/{search_id}/complete": (
        "Complete the review",
        "Records every candidate not yet marked as not a match and closes the review. 409 when the search has "
        "not been run yet.",
    ),
    "GET /api/v1/rfr/searches/{search_id}/report": (
        "Export the case report",
        "The case report as a self-contained HTML file: the search, its candidates, the decisions and the "
        "examiners, with images only of confirmed possible matches. The export is audited.",
    ),
    "GET /api/v1/rfr/candidates/{candidate_id}": (
        "Show a candidate",
        "One candidate of a search: custody record, rank, score and the decisions on it (without the first "
        "examiner's note while the caller's confirmation is awaited).",
    ),
    "GET /api/v1/rfr/candidates/{candidate_id}/image": (
        "Get a candidate's custody image",
        "The candidate's custody image as JPEG, to compare with the probe; never cached.",
    ),
    "POST /api/v1/rfr/candidates/{candidate_id}/decision": (
        "Mark a candidate",
        "Records `not-a-match` or `possible-match`, with an optional note. A possible match is reported only "
        "after a second examiner confirms it. 400 for another decision; 409 once a second examiner has "
        "confirmed or rejected it.",
    ),
    "POST /api/v1/rfr/candidates/{candidate_id}/confirmation": (
        "Confirm a possible match",
        "A second examiner's independent view of a possible match: agree or not, with an optional note. The "
        "examiner who marked it may not confirm it (403); 409 when it is not a possible match or already confirmed.",
    ),
    "GET /api/v1/custody/stats": (
        "Custody database statistics",
        "How many custody records and images are searchable, the model packs of their templates, the images "
        "refused, and the latest import.",
    ),
    # --- The public site's data ---------------------------------------------------------------------------
    "GET /api/v1/public/deployments": (
        "Announced deployments",
        "Deployments announced to the public (authorised, live, paused or ended, not yet closed): location, time "
        "window, use case and status, filterable by location and dates. Never a face, a subject or a camera.",
    ),
    "GET /api/v1/public/records": (
        "Published deployment records",
        "Closed deployments' records with the Met's published columns, as JSON or, with `format=csv`, as CSV, "
        "filterable by location and dates.",
    ),
}


def who_may_call(rule: frozenset[str] | None) -> str:
    """The policy rule in words: the roles, by their labels, in the order of ``ROLES``."""
    if rule is None:
        return "Nobody: the route has no access rule."
    if rule is PUBLIC:
        return "Anyone, without signing in."
    if rule == ANY_STAFF:
        return "Any signed-in member of staff."
    names = [ROLE_LABELS[r].lower() + "s" for r in ROLES if r in rule]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"{listed[0].upper()}{listed[1:]} only."
