"""``mlstudio login`` and ``mlstudio logout``: the stored token of each server."""

from __future__ import annotations

import argparse
import getpass
import socket
import sys
from typing import Any

from mlstudio._client.http import HttpClient
from mlstudio.auth import TokenAuthentication, forget_login, save_login, stored_login
from mlstudio.cli.common import EXIT_OK, server_url, without_secret
from mlstudio.cli.output import Output
from mlstudio.exceptions import MLStudioError


def cmd_login(args: argparse.Namespace, out: Output) -> int:
    """Store a pasted token, or log in with a password and store the token it mints."""
    server = server_url(args)
    if args.token:
        client = HttpClient(server, TokenAuthentication(args.token))
        user = client.get("user")
        token_info = user.get("token") or {}
        save_login(
            server,
            args.token,
            username=user["username"],
            token_name=token_info.get("name"),
            expires_at=token_info.get("expires_at"),
        )
        result = {"server": server, "username": user["username"], **without_secret(token_info)}
    else:
        username = args.username or input("Username: ")
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass("Password: ")
        body: dict[str, Any] = {
            "username": username,
            "password": password,
            "token_name": args.token_name or f"mlstudio-cli@{socket.gethostname()}"[:100],
        }
        if args.expires_in:  # 0: a token that does not expire
            body["expires_in"] = args.expires_in
        minted = HttpClient(server, None).post("login", body)
        save_login(
            server,
            minted["token"],
            username=minted["username"],
            token_id=minted.get("id"),
            token_name=minted.get("name"),
            expires_at=minted.get("expires_at"),
        )
        result = {"server": server, **without_secret(minted)}
    out.record(result)
    out.message(f"Logged in to {server} as {result['username']}.")
    return EXIT_OK


def cmd_logout(args: argparse.Namespace, out: Output) -> int:
    """Forget the server's stored token, revoking it first when login minted it."""
    server = server_url(args)
    entry = stored_login(server)
    if entry is None:
        out.message(f"Not logged in to {server}.")
        return EXIT_OK
    if entry.get("token_id") and not args.keep_token:
        # Revoke the token login minted, so a copied credentials file is worthless too.
        try:
            HttpClient(server, TokenAuthentication(entry["token"])).delete(
                f"tokens/{entry['token_id']}"
            )
        except MLStudioError as exc:
            out.message(f"Could not revoke the token on the server: {exc}")
    forget_login(server)
    out.message(f"Logged out of {server}.")
    return EXIT_OK


LOGIN_LIFETIME = 90 * 24 * 3600


def add_commands(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Declare ``login`` and ``logout``; `common` holds the global options."""
    login = commands.add_parser("login", parents=[common], help="log in and store a token")
    login.add_argument("--username", "-u")
    login.add_argument("--token", help="store this personal token instead of logging in")
    login.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    login.add_argument("--token-name", help="name of the token login creates")
    # A stored credential should not live for ever: 90 days, as a CLI sign-in lasts on the
    # reference service; `mlstudio login` again renews it.
    login.add_argument(
        "--expires-in",
        type=int,
        default=LOGIN_LIFETIME,
        help="lifetime of the stored token in seconds (default 90 days; 0: never expires)",
    )
    login.set_defaults(func=cmd_login)

    logout = commands.add_parser("logout", parents=[common], help="forget the stored token")
    logout.add_argument("--keep-token", action="store_true", help="do not revoke it")
    logout.set_defaults(func=cmd_logout)
