"""The one error vocabulary. Services raise these; each transport maps them in one place."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

WhoFixes = Literal["agent", "buyer", "merchant", "retry", "operator"]


class CheckoutError(Exception):
    """A failure a caller can understand and act on.

    ``message`` is written for the model that reads it: what happened (with the numbers) and the
    next tool or argument to use. ``details`` carries the same facts as data.
    """

    code: ClassVar[str] = "checkout_error"
    retryable: ClassVar[bool] = False
    who_fixes: ClassVar[WhoFixes] = "agent"
    http_status: ClassVar[int] = 400

    def __init__(
        self,
        message: str,
        *,
        details: Mapping[str, Any] | None = None,
        next_actions: Sequence[str] = (),
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        self.next_actions = tuple(next_actions)
        self.retry_after_seconds = retry_after_seconds

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "retryable": self.retryable,
            "who_fixes": self.who_fixes,
            "details": self.details,
        }
        if self.next_actions:
            body["next_actions"] = list(self.next_actions)
        if self.retry_after_seconds is not None:
            body["retry_after_seconds"] = self.retry_after_seconds
        return body


class InvalidInput(CheckoutError):
    code = "invalid_input"


class InvalidCursor(CheckoutError):
    code = "invalid_cursor"


class NotFound(CheckoutError):
    code = "not_found"
    http_status = 404


class ProductNotFound(NotFound):
    code = "product_not_found"


class SkuNotFound(NotFound):
    code = "sku_not_found"


class CartNotFound(NotFound):
    code = "cart_not_found"


class OrderNotFound(NotFound):
    code = "order_not_found"


class CurrencyMismatch(CheckoutError):
    code = "currency_mismatch"
    http_status = 409


class InsufficientStock(CheckoutError):
    code = "insufficient_stock"
    http_status = 409


class CartEmpty(CheckoutError):
    code = "cart_empty"
    http_status = 409


class CartNotOpen(CheckoutError):
    code = "cart_not_open"
    http_status = 409


class CartAlreadyOrdered(CheckoutError):
    code = "cart_already_ordered"
    http_status = 409


class DiscountCodeRejected(CheckoutError):
    """A discount code create_order cannot honour; the subclass says why."""

    code = "discount_code_rejected"
    http_status = 409


class DiscountCodeInvalid(DiscountCodeRejected):
    code = "discount_code_invalid"


class DiscountCodeExpired(DiscountCodeRejected):
    code = "discount_code_expired"


class DiscountMinimumNotMet(DiscountCodeRejected):
    code = "discount_minimum_not_met"


class DiscountCodeExhausted(DiscountCodeRejected):
    code = "discount_code_exhausted"


class IdempotencyConflict(CheckoutError):
    code = "idempotency_conflict"
    http_status = 409


class IdempotencyInFlight(CheckoutError):
    code = "idempotency_in_flight"
    retryable = True
    who_fixes = "retry"
    http_status = 409


class InvalidState(CheckoutError):
    code = "invalid_state"
    http_status = 409


class Forbidden(CheckoutError):
    code = "forbidden"
    who_fixes = "operator"
    http_status = 403


class StorageUnavailable(CheckoutError):
    code = "storage_unavailable"
    retryable = True
    who_fixes = "retry"
    http_status = 503


class StorageBusy(CheckoutError):
    code = "storage_busy"
    retryable = True
    who_fixes = "retry"
    http_status = 503


class CatalogImportInvalid(CheckoutError):
    code = "catalog_import_invalid"
    who_fixes = "merchant"


class LinkNotFound(NotFound):
    code = "link_not_found"


class LinkExists(CheckoutError):
    code = "link_exists"
    http_status = 409


class LinkExpired(CheckoutError):
    code = "link_expired"
    who_fixes = "agent"
    http_status = 410


class LinkConsumed(CheckoutError):
    code = "link_consumed"
    http_status = 410


class LinkRevoked(CheckoutError):
    code = "link_revoked"
    http_status = 410


class EmailMismatch(CheckoutError):
    code = "email_mismatch"
    who_fixes = "buyer"
    http_status = 403


class CsrfRejected(CheckoutError):
    code = "csrf_rejected"
    who_fixes = "buyer"
    http_status = 403


class PaymentGatewayError(CheckoutError):
    code = "payment_gateway_error"
    retryable = True
    who_fixes = "retry"
    http_status = 502


class PaymentNotStarted(CheckoutError):
    code = "payment_not_started"
    http_status = 409


class RefundTooLarge(CheckoutError):
    code = "refund_too_large"
    who_fixes = "merchant"
    http_status = 409


class WebhookRejected(CheckoutError):
    code = "webhook_rejected"
    who_fixes = "operator"
    http_status = 400


class RateLimited(CheckoutError):
    code = "rate_limited"
    retryable = True
    who_fixes = "retry"
    http_status = 429


class WebhookEndpointNotFound(NotFound):
    code = "webhook_endpoint_not_found"
    who_fixes = "merchant"


class WebhookDeliveryNotFound(NotFound):
    code = "webhook_delivery_not_found"
    who_fixes = "merchant"


class SecretKeyUnavailable(CheckoutError):
    """Sealed data (buyer details, webhook secrets) cannot be sealed or opened: no key, or another key."""

    code = "secret_key_unavailable"
    retryable = True
    who_fixes = "operator"
    http_status = 503


class OAuthInvalidGrant(CheckoutError):
    """An authorization code or refresh token that is unknown, used, expired or revoked (RFC 6749 invalid_grant)."""

    code = "oauth_invalid_grant"
    who_fixes = "agent"


class OAuthInvalidClientMetadata(CheckoutError):
    """A dynamic client registration this server will not accept (RFC 7591 invalid_client_metadata)."""

    code = "oauth_invalid_client_metadata"


class OAuthConsentNotFound(NotFound):
    code = "oauth_consent_not_found"
    who_fixes = "merchant"


class OAuthApprovalRefused(CheckoutError):
    code = "oauth_approval_refused"
    who_fixes = "merchant"
    http_status = 403


class InternalError(CheckoutError):
    code = "internal_error"
    retryable = True
    who_fixes = "operator"
    http_status = 500


def all_error_types() -> list[type[CheckoutError]]:
    """Every concrete error class, for the vocabulary test and the docs."""
    found: list[type[CheckoutError]] = []
    pending: list[type[CheckoutError]] = [CheckoutError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found
