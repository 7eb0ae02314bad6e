"""The key that seals handout links: a site's key file, or one the service makes itself.

A site names a file with CDS_HANDOUT_KEY_FILE: one Fernet key a line (`#` comments),
the first seals new links and every one opens them, so a key is rotated by putting the
new one first and dropping the old one once its links have expired. Without that
setting the service makes a key once and keeps it in its database (the `service_secrets`
table), so every worker and every instance sharing the database opens the links any of
them made, and a restart keeps them working. The key is never a constant in the code and
never logged.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet, MultiFernet

from cds.config import ConfigError
from cds.storage import Store

SECRET_NAME = "handout-link-key"


def load_keys(key_file: str | None, store: Store) -> MultiFernet:
    """The keys from the site's file, or the service's own key from its database."""
    if key_file:
        return MultiFernet([Fernet(key) for key in read_key_file(key_file)])
    return MultiFernet([Fernet(store.service_secret(SECRET_NAME, new_key))])


def new_key() -> str:
    return Fernet.generate_key().decode("ascii")


def read_key_file(path: str) -> list[bytes]:
    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"CDS_HANDOUT_KEY_FILE: cannot read {path} "
                          f"({type(error).__name__})") from None
    keys = [line.strip().encode("ascii") for line in text.splitlines()
            if line.strip() and not line.strip().startswith("#")]
    if not keys:
        raise ConfigError(f"CDS_HANDOUT_KEY_FILE: {path} holds no key")
    for number, key in enumerate(keys, 1):
        try:
            Fernet(key)
        except ValueError:
            # Never echo the line: it is (or is meant to be) a secret.
            raise ConfigError(f"CDS_HANDOUT_KEY_FILE: key {number} in {path} is not a "
                              "Fernet key (32 bytes, url-safe base64; make one with "
                              "`baclofen-cds handout new-key`)") from None
    return keys
