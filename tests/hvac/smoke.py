#!/usr/bin/env python3
"""Drive Warden's database secrets engine with hvac, the Python Vault client.

Only hvac's public API is used, exactly as an application would use it; no
request is hand-built. Run by tests/tests/vault_client.rs, or by hand:

    VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=root \
    PG_URL_TEMPLATE='postgresql://{{username}}:{{password}}@127.0.0.1:5432/postgres' \
    PG_USER=postgres PG_PASSWORD=secret MOUNT=hvacdb python3 tests/hvac/smoke.py

Environment: VAULT_ADDR, VAULT_TOKEN, PG_URL_TEMPLATE (the templated
connection_url), PG_USER and PG_PASSWORD (a login with CREATEROLE), MOUNT (a
mount path not in use).

Output: one line per check (`ok - ...` or `FAIL - ...`), then
`GONE: name1,name2,...` (the PostgreSQL logins the script had issued that must
no longer exist when it ends), then exactly `N passed, M failed`. The exit
status is 1 when any check failed.
"""

import importlib.metadata
import os
import sys
import traceback

import hvac
import hvac.exceptions

CREATE_ROLE = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"

passed = 0
failed = 0


def check(what, fn):
    """Run one check; `fn` returns None on success or raises (AssertionError
    or anything else) on failure. Returns what `fn` returned, or None."""
    global passed, failed
    try:
        result = fn()
    except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the run
        failed += 1
        detail = f"{type(e).__name__}: {e}"
        print(f"FAIL - {what}: {detail}", flush=True)
        traceback.print_exc(file=sys.stderr)
        return None
    passed += 1
    print(f"ok - {what}", flush=True)
    return result


def expect(cond, message):
    if not cond:
        raise AssertionError(message)


def status_of(response):
    """The HTTP status of what hvac returned: a requests.Response for bodies
    it did not parse (204), a dict for a 200 with JSON."""
    if isinstance(response, dict):
        return 200
    return getattr(response, "status_code", None)


def expect_no_content(response, what):
    status = status_of(response)
    expect(status in (200, 204), f"{what}: expected 204 (or 200), got {status}: {response!r}")


def expect_raises(exc_type, fn, what):
    try:
        got = fn()
    except exc_type as e:
        return e
    except hvac.exceptions.VaultError as e:
        raise AssertionError(f"{what}: expected {exc_type.__name__}, got {type(e).__name__}: {e}") from e
    raise AssertionError(f"{what}: expected {exc_type.__name__}, got success: {got!r}")


def main():
    addr = os.environ["VAULT_ADDR"]
    token = os.environ["VAULT_TOKEN"]
    url_template = os.environ["PG_URL_TEMPLATE"]
    pg_user = os.environ["PG_USER"]
    pg_password = os.environ["PG_PASSWORD"]
    mount = os.environ.get("MOUNT", "database")
    prefix = f"{mount}/creds/app"

    print(f"hvac {importlib.metadata.version('hvac')} against {addr}, mount {mount}/", flush=True)
    client = hvac.Client(url=addr, token=token, timeout=60)
    db = client.secrets.database
    issued = []  # usernames that must be gone at the end

    # --- the mount ---
    check(
        "sys.enable_secrets_engine('database', path=MOUNT)",
        lambda: expect_no_content(client.sys.enable_secrets_engine("database", path=mount), "enable"),
    )

    def mounted():
        mounts = client.sys.list_mounted_secrets_engines()
        data = mounts.get("data", mounts)
        expect(f"{mount}/" in data, f"{mount}/ not in {sorted(data)}")
        expect(data[f"{mount}/"].get("type") == "database", f"type of {mount}/: {data[f'{mount}/']}")

    check("sys.list_mounted_secrets_engines() lists it with type database", mounted)

    # --- the connection ---
    check(
        "secrets.database.configure(name='pg', ...)",
        lambda: expect_no_content(
            db.configure(
                name="pg",
                plugin_name="postgresql-database-plugin",
                connection_url=url_template,
                username=pg_user,
                password=pg_password,
                allowed_roles=["app"],
                mount_point=mount,
            ),
            "configure",
        ),
    )

    def read_connection():
        body = db.read_connection(name="pg", mount_point=mount)
        data = body["data"]
        expect(data.get("plugin_name") == "postgresql-database-plugin", f"plugin_name: {data}")
        expect(data.get("allowed_roles") == ["app"], f"allowed_roles: {data}")
        details = data.get("connection_details", {})
        expect(details.get("connection_url") == url_template, f"connection_url: {details}")
        expect(details.get("username") == pg_user, f"username: {details}")
        expect("password" not in details, f"connection_details has a password: {sorted(details)}")
        expect(pg_password not in repr(body), "the password appears in the read")

    check("secrets.database.read_connection('pg') has no password", read_connection)

    # --- the role ---
    check(
        "secrets.database.create_role('app', ...)",
        lambda: expect_no_content(
            db.create_role(
                name="app",
                db_name="pg",
                creation_statements=[CREATE_ROLE],
                default_ttl="1h",
                max_ttl="24h",
                mount_point=mount,
            ),
            "create_role",
        ),
    )

    def read_role():
        data = db.read_role(name="app", mount_point=mount)["data"]
        expect(data.get("db_name") == "pg", f"db_name: {data}")
        expect(data.get("creation_statements") == [CREATE_ROLE], f"creation_statements: {data}")
        expect(data.get("default_ttl") == 3600, f"default_ttl: {data}")
        expect(data.get("max_ttl") == 86400, f"max_ttl: {data}")

    check("secrets.database.read_role('app')", read_role)

    def list_roles():
        keys = db.list_roles(mount_point=mount)["data"]["keys"]
        expect(keys == ["app"], f"keys: {keys}")

    check("secrets.database.list_roles() is ['app']", list_roles)

    # --- a credential and its lease ---
    def generate(label):
        def run():
            body = db.generate_credentials(name="app", mount_point=mount)
            data = body["data"]
            username, password, lease_id = data["username"], data["password"], body["lease_id"]
            issued.append(username)
            expect(username and password, f"empty username or password: {data}")
            expect(lease_id.startswith(f"{prefix}/"), f"lease_id {lease_id!r} should start with {prefix}/")
            expect(body.get("lease_duration") == 3600, f"lease_duration: {body.get('lease_duration')}")
            expect(body.get("renewable") is True, f"renewable: {body.get('renewable')}")
            return lease_id

        return check(f"secrets.database.generate_credentials('app') {label}", run)

    lease_id = generate("(first)")
    if lease_id is not None:

        def read_lease():
            data = client.sys.read_lease(lease_id=lease_id)["data"]
            expect(data.get("id") == lease_id, f"id: {data}")
            expect(data.get("renewable") is True, f"renewable: {data}")
            ttl = data.get("ttl")
            expect(isinstance(ttl, int) and 3500 < ttl <= 3600, f"ttl: {data}")

        check("sys.read_lease(lease_id)", read_lease)

        def renew():
            body = client.sys.renew_lease(lease_id=lease_id, increment=600)
            expect(body.get("lease_id") == lease_id, f"lease_id: {body}")
            expect(body.get("lease_duration") == 600, f"lease_duration: {body}")
            ttl = client.sys.read_lease(lease_id=lease_id)["data"].get("ttl")
            expect(isinstance(ttl, int) and 500 < ttl <= 600, f"ttl after renew: {ttl}")

        check("sys.renew_lease(lease_id, increment=600) -> lease_duration 600", renew)

        def list_leases():
            keys = client.sys.list_leases(prefix=prefix)["data"]["keys"]
            expect(lease_id.rsplit("/", 1)[1] in keys, f"{lease_id} not among {keys}")

        check(f"sys.list_leases(prefix={prefix!r}) has it", list_leases)

        check(
            "sys.revoke_lease(lease_id)",
            lambda: expect_no_content(client.sys.revoke_lease(lease_id=lease_id), "revoke_lease"),
        )
        check(
            "sys.read_lease(lease_id) after revoke raises InvalidRequest",
            lambda: expect_raises(
                hvac.exceptions.InvalidRequest, lambda: client.sys.read_lease(lease_id=lease_id), "read_lease"
            ),
        )

    # --- revoke-prefix ---
    more = [lid for lid in (generate("(second)"), generate("(third)")) if lid is not None]
    if len(more) == 2:

        def list_both():
            keys = client.sys.list_leases(prefix=prefix)["data"]["keys"]
            want = sorted(lid.rsplit("/", 1)[1] for lid in more)
            expect(sorted(keys) == want, f"keys {sorted(keys)}, expected {want}")

        check(f"sys.list_leases(prefix={prefix!r}) has exactly the two", list_both)
        check(
            f"sys.revoke_prefix({prefix!r})",
            lambda: expect_no_content(client.sys.revoke_prefix(prefix=prefix), "revoke_prefix"),
        )
        check(
            f"sys.list_leases(prefix={prefix!r}) after revoke_prefix raises InvalidPath (nothing left)",
            lambda: expect_raises(
                hvac.exceptions.InvalidPath, lambda: client.sys.list_leases(prefix=prefix), "list_leases"
            ),
        )

    # --- errors come back as hvac's exceptions ---
    def unknown_role():
        e = expect_raises(
            hvac.exceptions.InvalidRequest,
            lambda: db.generate_credentials(name="no-such-role", mount_point=mount),
            "generate_credentials('no-such-role')",
        )
        expect(e.errors, f"the exception carries no error messages: {e!r}")

    check("generate_credentials('no-such-role') raises InvalidRequest", unknown_role)

    # --- disabling the mount revokes what is left ---
    generate("(fourth, left for disable)")
    check(
        "sys.disable_secrets_engine(MOUNT)",
        lambda: expect_no_content(client.sys.disable_secrets_engine(path=mount), "disable"),
    )

    def unmounted():
        mounts = client.sys.list_mounted_secrets_engines()
        data = mounts.get("data", mounts)
        expect(f"{mount}/" not in data, f"{mount}/ still in {sorted(data)}")

    check("sys.list_mounted_secrets_engines() no longer lists it", unmounted)

    print("GONE: " + ",".join(issued), flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
