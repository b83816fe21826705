"""A real SMTP server for Lockstep's tests: Debian's aiosmtpd with TLS
(STARTTLS, or TLS from the first byte) and AUTH, writing each message it
accepts to a file. Started by internal/tools/smtptest; never in production.

Arguments: --cert PEM --key PEM --out DIR [--implicit] [--no-tls]
[--user NAME --password-file FILE]. Prints "READY <port>" once listening
on 127.0.0.1.
"""
import argparse
import asyncio
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    def __init__(self, out):
        self.out = out
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        base = os.path.join(self.out, "%04d" % self.n)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        with open(base + ".json.tmp", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                       "tls": server.transport.get_extra_info("ssl_object") is not None, "auth": session.authenticated}, f)
        os.rename(base + ".eml.tmp", base + ".eml")
        os.rename(base + ".json.tmp", base + ".json")
        return "250 OK"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--out", required=True)
    p.add_argument("--implicit", action="store_true")
    p.add_argument("--no-tls", action="store_true")
    p.add_argument("--user")
    p.add_argument("--password-file")
    a = p.parse_args()

    ctx = None
    if not a.no_tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)
    password = None
    if a.password_file:
        with open(a.password_file, "rb") as f:
            password = f.read().rstrip(b"\n")

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and a.user is not None
              and auth_data.login == a.user.encode() and auth_data.password == password)
        return AuthResult(success=ok, handled=False)

    handler = Handler(a.out)

    def factory():
        # With TLS from the first byte aiosmtpd does not know the session
        # is encrypted; AUTH is then safe to offer at once.
        kw = dict(hostname="lockstep-test-smtp", authenticator=authenticator if a.user else None,
                  auth_required=bool(a.user), auth_require_tls=not a.implicit)
        if ctx is not None and not a.implicit:
            kw.update(tls_context=ctx, require_starttls=True)
        return SMTP(handler, **kw)

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(
        factory, host="127.0.0.1", port=0, ssl=ctx if a.implicit else None))
    print("READY %d" % server.sockets[0].getsockname()[1], flush=True)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
