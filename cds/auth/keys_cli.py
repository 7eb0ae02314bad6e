"""`baclofen-cds keys`: a test key pair and signed tokens, so an EHR team can try us quickly.

    baclofen-cds keys generate --alg ES384 --out keys/ --iss https://ehr.example.org
    baclofen-cds keys token --key keys/private-key.pem --iss https://ehr.example.org \
        --aud https://cds.example.org/cds-services/baclofen-discontinuation

Keys made here are for trials; production clients sign with keys their own
security team manages.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jwt
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from cds.auth.trust import DEFAULT_MAX_TOKEN_LIFETIME_SECONDS

PRIVATE_KEY_FILE = "private-key.pem"
JWKS_FILE = "jwks.json"
TRUST_SNIPPET_FILE = "trust-snippet.yaml"
# why: --out is often a folder inside a git work tree (the README uses ./client-keys);
# a .gitignore of "*" keeps the private key out of any commit, wherever the folder is.
GITIGNORE_TEXT = "# Made by `baclofen-cds keys generate`: a private key is never committed.\n*\n"
RSA_KEY_BITS = 3072  # RS384 deserves more than the 2048-bit minimum
_ALGORITHM_FOR_CURVE = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def run_keys_cli(argv: Sequence[str]) -> int:
    """Run `keys generate|token` (argv excludes the word `keys`); return the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:  # argparse exits on --help and on usage errors
        return int(exc.code or 0)
    try:
        return args.run(args)
    except KeysCliError as exc:
        print(f"baclofen-cds keys: {exc}", file=sys.stderr)
        return 1


class KeysCliError(Exception):
    pass


def public_jwk(public_key: PublicKey, kid: str | None = None) -> dict[str, Any]:
    """The public JWK for a key, with `kid` (default: its RFC 7638 thumbprint), alg and use."""
    if isinstance(public_key, rsa.RSAPublicKey):
        jwk = RSAAlgorithm.to_jwk(public_key, as_dict=True)
        alg = "RS384"
    else:
        jwk = ECAlgorithm.to_jwk(public_key, as_dict=True)
        alg = _ALGORITHM_FOR_CURVE[public_key.curve.name]
    jwk = {name: jwk[name] for name in ("kty", "crv", "x", "y", "n", "e") if name in jwk}
    return {**jwk, "kid": kid or jwk_thumbprint(jwk), "alg": alg, "use": "sig"}


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint: a kid both the generate and token steps derive alike."""
    members = ("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("e", "kty", "n")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sign_client_token(
    private_key: PrivateKey,
    iss: str,
    aud: str,
    kid: str | None = None,
    ttl_seconds: int = 300,
    jku: str | None = None,
    tenant: str | None = None,
    now: float | None = None,
) -> str:
    """A CDS Hooks client JWT for one call to `aud`."""
    jwk = public_jwk(private_key.public_key(), kid)
    issued_at = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": iss,
        "aud": aud,
        "iat": issued_at,
        "exp": issued_at + ttl_seconds,
        "jti": str(uuid.uuid4()),
    }
    if tenant:
        claims["tenant"] = tenant
    headers: dict[str, Any] = {"kid": jwk["kid"], "typ": "JWT"}
    if jku:
        headers["jku"] = jku
    return jwt.encode(claims, private_key, algorithm=jwk["alg"], headers=headers)


def _generate(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / PRIVATE_KEY_FILE, out / JWKS_FILE, out / TRUST_SNIPPET_FILE]
    existing = [str(p) for p in paths if p.exists()]
    if existing:
        raise KeysCliError(f"refusing to overwrite {', '.join(existing)}")
    private_key: PrivateKey = (
        ec.generate_private_key(ec.SECP384R1())
        if args.alg == "ES384"
        else rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    )
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    gitignore = out / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text(GITIGNORE_TEXT, encoding="utf-8")
    # Owner-only from the moment the file exists.
    fd = os.open(paths[0], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    jwk = public_jwk(private_key.public_key(), args.kid)
    jwk_set = {"keys": [jwk]}
    paths[1].write_text(json.dumps(jwk_set, indent=2) + "\n", encoding="utf-8")
    snippet = {"issuers": [{"iss": args.iss, "jwks": jwk_set}]}
    paths[2].write_text(
        f"# Trust entry for {args.iss} (test key made by `baclofen-cds keys generate`).\n"
        "# Merge the issuer into the `issuers:` list of the file named by CDS_TRUST_FILE.\n"
        + yaml.safe_dump(snippet, sort_keys=False),
        encoding="utf-8",
    )
    print(f"private key (keep secret): {paths[0]}")
    print(f"public JWK Set:            {paths[1]}")
    print(f"trust file snippet:        {paths[2]}")
    print(f"kid: {jwk['kid']}  alg: {jwk['alg']}")
    print(
        "next: baclofen-cds keys token "
        f"--key {paths[0]} --iss {args.iss} --aud <URL you will call>"
    )
    return 0


def _token(args: argparse.Namespace) -> int:
    try:
        private_key = serialization.load_pem_private_key(Path(args.key).read_bytes(), None)
    except OSError as exc:
        raise KeysCliError(f"cannot read {args.key} ({exc.strerror})") from None
    except (ValueError, TypeError) as exc:
        raise KeysCliError(f"{args.key} is not an unencrypted PEM private key ({exc})") from None
    if not isinstance(private_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise KeysCliError("only RSA and EC (P-256/384/521) keys are supported")
    if isinstance(private_key, ec.EllipticCurvePrivateKey) and (
        private_key.curve.name not in _ALGORITHM_FOR_CURVE
    ):
        raise KeysCliError(f"EC curve {private_key.curve.name} is not supported")
    if args.ttl <= 0:
        raise KeysCliError("--ttl must be positive")
    if args.ttl > DEFAULT_MAX_TOKEN_LIFETIME_SECONDS:
        print(
            f"warning: --ttl {args.ttl} exceeds the service's default maximum token lifetime "
            f"({DEFAULT_MAX_TOKEN_LIFETIME_SECONDS} s); it will be rejected unless configured",
            file=sys.stderr,
        )
    print(
        sign_client_token(
            private_key,
            iss=args.iss,
            aud=args.aud,
            kid=args.kid,
            ttl_seconds=args.ttl,
            jku=args.jku,
            tenant=args.tenant,
        )
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="baclofen-cds keys", description="Test keys and client tokens for CDS Hooks calls."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="make a key pair, JWK Set and trust snippet")
    generate.add_argument("--alg", choices=["ES384", "RS384"], default="ES384")
    generate.add_argument("--out", required=True, help="directory for the three files")
    generate.add_argument("--iss", required=True, help="issuer URI the client will use")
    generate.add_argument("--kid", help="key id (default: the key's RFC 7638 thumbprint)")
    generate.set_defaults(run=_generate)

    token = commands.add_parser("token", help="print a signed client JWT for one URL")
    token.add_argument("--key", required=True, help="private key PEM (from `keys generate`)")
    token.add_argument("--iss", required=True)
    token.add_argument("--aud", required=True, help="the exact URL the token will be sent to")
    token.add_argument("--kid", help="key id (default: the key's RFC 7638 thumbprint)")
    token.add_argument("--ttl", type=int, default=300, help="seconds until expiry (default 300)")
    token.add_argument("--jku", help="JWK Set URL to name in the header (optional)")
    token.add_argument("--tenant", help="tenant claim (optional)")
    token.set_defaults(run=_token)
    return parser
