"""The account map: which AWS account is which, and in what environment."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

ENVIRONMENTS = ("prod", "nonprod", "dev", "sandbox")
DEFAULT_ENVIRONMENT = "prod"


@dataclass(frozen=True)
class Account:
    """One AWS account as the configuration describes it."""

    id: str
    name: str
    environment: str
    team: str = ""
    role_arn: str = ""


@dataclass(frozen=True)
class AccountMap:
    """The known accounts, looked up by id or name.

    An account that is not in the map is in ``default_environment``, which is
    ``prod`` unless configured otherwise: an unmapped account is treated as
    production so that nothing important is under-prioritised.
    """

    accounts: tuple[Account, ...] = ()
    default_environment: str = DEFAULT_ENVIRONMENT
    _by_id: Mapping[str, Account] = field(init=False, repr=False, compare=False)
    _by_name: Mapping[str, Account] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "accounts", tuple(self.accounts))
        object.__setattr__(self, "_by_id", {a.id: a for a in self.accounts})
        object.__setattr__(self, "_by_name", {a.name: a for a in self.accounts})

    def __iter__(self) -> Iterator[Account]:
        return iter(self.accounts)

    def __len__(self) -> int:
        return len(self.accounts)

    def get(self, account_id: str) -> Account | None:
        """Return the account with this id, or None."""
        return self._by_id.get(account_id)

    def find(self, id_or_name: str) -> Account | None:
        """Return the account with this id or, failing that, this name, or None."""
        return self._by_id.get(id_or_name) or self._by_name.get(id_or_name)

    def environment_of(self, account_id: str) -> str:
        """Return the environment of an account; unmapped accounts get the default (prod)."""
        account = self._by_id.get(account_id)
        return account.environment if account else self.default_environment
