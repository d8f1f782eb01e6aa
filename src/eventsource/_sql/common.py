"""SQL every dialect shares: the tenant condition of scoped reads."""

from __future__ import annotations

from uuid import UUID

from eventsource.tenancy import bound_tenant

__all__ = ["scope_filter", "tenant_clause", "tenant_variants"]


def tenant_clause(placeholder: str, column: str = "tenant_id") -> str:
    """The SQL condition a tenant-scoped read adds: `<column> = <placeholder>`.

    Plain equality on purpose: it implies `tenant_id IS NOT NULL`, so the partial tenant
    indexes of the shipped schemas apply, and tenant-less rows never match.
    """
    return f"{column} = {placeholder}"


def scope_filter(clauses: list[str], params: list[object], placeholder: str = "?") -> UUID | None:
    """Add the bound tenant's condition (value as text) to a list-built WHERE clause, if a
    tenant is bound; returns that tenant."""
    tenant = bound_tenant()
    if tenant is not None:
        clauses.append(tenant_clause(placeholder))
        params.append(str(tenant))
    return tenant


def tenant_variants(template: str, placeholder: str, column: str = "tenant_id") -> tuple[str, str]:
    """A statement with a `{tenant}` slot as (unscoped, scoped): the slot becomes nothing, or
    ` AND <column> = <placeholder>`. Index the pair with `tenant is not None`."""
    return (
        template.format(tenant=""),
        template.format(tenant=f" AND {tenant_clause(placeholder, column)}"),
    )
