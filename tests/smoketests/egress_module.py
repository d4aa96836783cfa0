"""Upstream's http-egress module in Python, shared by the ports of cluster/http_egress.rs and
standalone/http_egress.rs: a procedure that succeeds only when its request is refused as upstream refuses a
private or special-purpose address."""

HTTP_EGRESS = """
    from spacetimedb import HttpError, ProcedureContext, procedure

    REFUSAL = "refusing to connect to private or special-purpose addresses"


    @procedure
    def request_disallowed_ip(ctx: ProcedureContext, url: str) -> None:
        try:
            ctx.http.get(url)
        except HttpError as error:
            if REFUSAL in str(error):
                return
            raise RuntimeError(f"unexpected error from http request: {error}") from None
        raise RuntimeError("request unexpectedly succeeded")
"""
