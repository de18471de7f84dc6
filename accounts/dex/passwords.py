"""Where the dex_* commands take plaintext passwords from: `-p` or a user collection's `client_secret`.

Django stores lomas passwords as PBKDF2 hashes, from which Dex's bcrypt hash cannot be made, so the
plaintext comes again from the operator: on the command line for one user, or from the YAML user
collection (lomas 0.5 layout `id: {name, email, client_secret}`) used to load the users.
"""

from argparse import ArgumentParser
from pathlib import Path

from accounts.collections import user_records_from_collection
from lomas.collection_files import collection_read_yaml
from lomas.errors import InvalidQuery


def add_password_arguments(parser: ArgumentParser) -> None:
    """`-p PASSWORD` or `-yf COLLECTION`, exactly one."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("-p", "--password", help="The Dex password (plaintext; hashed with bcrypt before sending).")
    source.add_argument(
        "-yf", "--yaml_file", type=Path, help="User collection (YAML): the user's id.client_secret is the password."
    )


def passwords_from_collection(path: Path) -> dict[str, str]:
    """User name → client_secret of the users of a collection file that have one."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidQuery(f"Cannot read {path}: {exc.strerror}.") from exc
    records = user_records_from_collection(collection_read_yaml(text, key="users"))
    return {record.name: record.client_secret for record in records if record.client_secret}


def password_for(username: str, *, password: str | None, yaml_file: Path | None) -> str:
    """The password given with `-p`, or the user's client_secret in the collection `-yf`."""
    if password is not None:
        return password
    if yaml_file is None:
        raise InvalidQuery("Give the password with -p or a user collection with -yf.")
    secret = passwords_from_collection(yaml_file).get(username)
    if secret is None:
        raise InvalidQuery(f"User {username} has no client_secret in {yaml_file}.")
    return secret
