"""Errors a delivery can be rejected with, each mapped to the HTTP status the forge sees."""

from __future__ import annotations

from builder.errors import HookbuildError


class DeliveryRejected(HookbuildError):
    status_code = 400


class MalformedPayload(DeliveryRejected):
    status_code = 400


class SignatureInvalid(DeliveryRejected):
    status_code = 401


class UnknownRepository(DeliveryRejected):
    status_code = 404


class PayloadTooLarge(DeliveryRejected):
    status_code = 413
