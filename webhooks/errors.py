"""Errors a request can be rejected with, each mapped to the HTTP status the client sees."""

from __future__ import annotations

from builder.errors import HookbuildError


class RequestRejected(HookbuildError):
    """Anything we refuse to act on; answered as `{"error": str(exc)}` with `status_code`."""

    status_code = 400


class DeliveryRejected(RequestRejected):
    status_code = 400


class MalformedPayload(DeliveryRejected):
    status_code = 400


class SignatureInvalid(DeliveryRejected):
    status_code = 401


class UnknownRepository(DeliveryRejected):
    status_code = 404


class PayloadTooLarge(DeliveryRejected):
    status_code = 413


class BodyTooSlow(DeliveryRejected):
    """The body did not arrive within `server.body_timeout_seconds`."""

    status_code = 408


class ClientGone(DeliveryRejected):
    """The client hung up before its body was read: nobody gets the answer."""

    status_code = 400


class BadParameter(RequestRejected):
    """A query parameter or header that should be a number, and is not, or is out of range."""

    status_code = 400
