"""The error tree of ``reconciler.errors``: every error the reconciler raises on purpose."""

from __future__ import annotations


def test_format_and_run_errors_are_in_the_error_tree_with_their_exit_codes() -> None:
    """Issue 13.7: both lived beside the tree of ``errors.py``; the CLI's one handler and
    library users catch them as ``ReconcilerError`` and read ``exit_code`` on the class."""
    from reconciler import errors
    from reconciler.app import FormatError
    from reconciler.app import session as session_target
    from reconciler.cli.failures import exit_code_of

    assert FormatError is errors.FormatError
    assert session_target.RunError is errors.RunError
    for cls in (errors.FormatError, errors.RunError):
        assert issubclass(cls, errors.ReconcilerError)
        assert cls.__name__ in (errors.__doc__ or "")
        assert cls.exit_code == exit_code_of(cls("x")) == 1


def test_details_carry_a_provider_errors_data_to_another_error() -> None:
    from reconciler.errors import AmbiguousWriteError, ServerError

    cause = ServerError(
        "busy", status=503, error_type="overloaded_error", request_id="req_1", method="POST"
    )
    again = AmbiguousWriteError("may have happened", **cause.details())
    assert (again.status, again.error_type, again.request_id, again.method) == (
        503,
        "overloaded_error",
        "req_1",
        "POST",
    )
