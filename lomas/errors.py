"""The lomas error vocabulary: one exception per wire error type (spec §1.2).

Services raise these; the DRF exception handler and the job runner turn them into
the JSON body and status code the lomas client parses.
"""

from typing import Any

# Message templates: tests and clients match their prefixes.
UNKNOWN_USER = "User {user} does not exist. Please, verify the client object initialisation."
UNKNOWN_DATASET = "Dataset {dataset} does not exist. Please, verify the client object initialisation."
NO_ACCESS = "{user} does not have access to {dataset}."
QUERY_IN_PROGRESS = "User {user} is trying to query before end of previous query."
NOT_ENOUGH_BUDGET = "Not enough budget for this query epsilon remaining {epsilon}, delta remaining {delta}."
ADMIN_ONLY = "Only admin users can query this endpoint."
BAD_TOKEN = "Failed bearer token verification."  # noqa: S105 (a message, not a secret)
JOB_OF_OTHER_USER = "{user} does not have access to job with uid {uid}."
PRIVATE_RUN_FAILED = (
    "The query failed while it ran on the private data. Its cost was charged, since a failure there is a "
    "release too; the details are withheld because they may depend on the data. Try it on the dummy dataset."
)


class LomasError(Exception):
    """Base of every error that reaches a lomas client."""

    status = 500
    wire_type = "InternalServerException"

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def to_wire(self) -> dict[str, Any]:
        """The error body as the client expects it."""
        return {"type": self.wire_type, "message": self.message}


class InvalidQuery(LomasError):
    """The request cannot be answered as asked (400)."""

    status = 400
    wire_type = "InvalidQueryException"


class NotEnoughBudget(InvalidQuery):
    """The remaining budget does not cover the cost of the query."""

    def __init__(self, *, epsilon: float, delta: float) -> None:
        super().__init__(NOT_ENOUGH_BUDGET.format(epsilon=epsilon, delta=delta))


class DeltaTooLarge(InvalidQuery):
    """A query whose delta could publish a record outright: δ must stay below 1/n."""

    def __init__(self, *, delta: float, rows: int | None) -> None:
        if rows is None:
            reason = "its metadata gives no length (maxLength or publicLength), so only a delta of 0 is accepted"
        else:
            reason = f"it may hold {rows} rows, and a delta of 1/{rows} = {1 / rows:.6g} or more can release a record"
        super().__init__(f"The query's delta {delta:.6g} is too large for this dataset: {reason}.")


class UnauthorizedAccess(LomasError):
    """The caller may not do this (403)."""

    status = 403
    wire_type = "UnauthorizedAccessException"


class ExternalLibraryError(LomasError):
    """A DP library failed (422); the message is ours, never the library's raw text."""

    status = 422
    wire_type = "ExternalLibraryException"

    def __init__(self, message: str, *, library: str) -> None:
        super().__init__(message)
        self.library = library

    def to_wire(self) -> dict[str, Any]:
        """The error body, naming the library."""
        return {**super().to_wire(), "library": self.library}


class PrivateRunFailed(ExternalLibraryError):
    """The library failed on the private data: charged, and told without any library text (422)."""

    def __init__(self, *, library: str) -> None:
        super().__init__(PRIVATE_RUN_FAILED, library=library)


class InternalServerError(LomasError):
    """Anything unforeseen (500); its text is logged, never sent."""

    def to_wire(self) -> dict[str, Any]:
        """Only the type: internals are not leaked."""
        return {"type": self.wire_type}


class ServiceUnavailable(InternalServerError):
    """The database or the job broker cannot be reached (503); the body is that of a 500."""

    status = 503


class JobAlreadyCharged(InternalServerError):
    """A second charge for the same job, refused by the ledger (500)."""
