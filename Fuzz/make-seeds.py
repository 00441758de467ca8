#!/usr/bin/env python3
"""Writes the seed corpora Fuzz/corpus/TARGET/ from the unit tests' vectors.

Every string literal of the named test files becomes one seed (descriptions too: they are
short and harmless), with the target's leading choice bytes; a few targets also take fixture
files. Seeds are named by content hash, so running this again adds only what is new.
Run it from anywhere: python3 Fuzz/make-seeds.py
"""
import hashlib
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SESSION_ID = "dGhpcyBpcyBhIDMyIGJ5dGUgc2Vzc2lvbiBpZCEhISE"


def swift_literals(path):
    """The string literals of a Swift file: "…" with escapes, #"…"# raw, and \"\"\" blocks.
    An interpolation \\(…) becomes a session-id-like value."""
    text = open(os.path.join(ROOT, path), encoding="utf-8").read()
    out, i = [], 0
    while i < len(text):
        if text.startswith("//", i) and not text.startswith("///", i) or text.startswith("///", i):
            i = text.find("\n", i)
            i = len(text) if i < 0 else i
            continue
        if text.startswith('#"', i):
            end = text.find('"#', i + 2)
            out.append(text[i + 2:end])
            i = end + 2
            continue
        if text.startswith('"""', i):
            end = text.find('"""', i + 3)
            body = text[i + 3:end]
            lines = body.split("\n")[1:]
            indent = len(lines[-1]) if lines else 0
            out.append(unescape("\n".join(l[indent:] for l in lines[:-1])))
            i = end + 3
            continue
        if text[i] == '"':
            j, depth = i + 1, 0
            while j < len(text):
                if text[j] == "\\":
                    if text[j + 1] == "(":
                        depth, j = 1, j + 2
                        while depth:
                            depth += {"(": 1, ")": -1}.get(text[j], 0)
                            j += 1
                        continue
                    j += 2
                    continue
                if text[j] == '"' or text[j] == "\n":
                    break
                j += 1
            out.append(unescape(text[i + 1:j]))
            i = j + 1
            continue
        i += 1
    return out


def unescape(body):
    body = re.sub(r"\\\((?:[^()]|\([^()]*\))*\)", SESSION_ID, body)
    simple = {"n": "\n", "r": "\r", "t": "\t", "0": "\0", "\\": "\\", '"': '"', "'": "'"}

    def one(match):
        code = match.group(1)
        return chr(int(code, 16)) if code else simple.get(match.group(2), match.group(0))

    return re.sub(r"\\u\{([0-9a-fA-F]+)\}|\\(.)", one, body)


def write(target, seeds):
    directory = os.path.join(ROOT, "Fuzz", "corpus", target)
    os.makedirs(directory, exist_ok=True)
    count = 0
    for seed in seeds:
        data = seed if isinstance(seed, bytes) else seed.encode("utf-8", "surrogatepass")
        if len(data) > 8192:
            continue
        name = hashlib.sha1(data).hexdigest()[:16]
        with open(os.path.join(directory, name), "wb") as handle:
            handle.write(data)
        count += 1
    print(f"{target}: {count} seeds")


def files(*paths, ext=""):
    for path in paths:
        full = os.path.join(ROOT, path)
        names = sorted(os.listdir(full)) if os.path.isdir(full) else [""]
        for name in names:
            file = os.path.join(full, name) if name else full
            if os.path.isfile(file) and file.endswith(ext):
                yield open(file, "rb").read()


def main():
    lit = swift_literals
    write("path", lit("Tests/GatehousePolicyTests/PathNormalizerTests.swift"))
    origins = re.findall(r'\("[^"]*", "([^"]*)", "([^"]*)", (?:true|false)\)',
                         open(os.path.join(ROOT, "Tests/GatehousePolicyTests/OriginPatternTests.swift")).read())
    write("traceparent", [l for l in lit("Tests/GatehouseCoreTests/TraceContextTests.swift") if len(l) < 200])
    write("origin", [f"{pattern}\n{origin}" for pattern, origin in origins] + lit("Tests/GatehousePolicyTests/OriginPatternTests.swift"))
    write("cookie", [b"\x00" + s.encode() for s in lit("Tests/GatehouseSessionsTests/SessionCookieTests.swift")]
          + [bytes([kind]) + s.encode() for s in lit("Tests/GatehouseSessionsTests/LoginRequestTests.swift") for kind in (2, 3)])
    write("users", lit("Tests/GatehouseSessionsTests/UsersFileTests.swift")
          + list(files("Tests/GatehouseConfigTests/Golden/users", "Tests/GatehouseSessionsTests/Fixtures")))

    fixture = json.load(open(os.path.join(ROOT, "Tests/GatehouseAuthTests/Fixtures/tokens.json")))
    tokens = [bytes([(n % 6) << 2]) + case["token"].encode() for n, case in enumerate(fixture["cases"])]
    now = fixture["now"]
    signed = [
        ('{"alg":"HS256","typ":"JWT"}', {"iss": "https://local.test", "aud": "gatehouse", "sub": "alice", "exp": now + 3600, "roles": ["admin"]}),
        ('{"alg":"HS384","kid":"k"}', {"iss": "https://local.test", "aud": ["x", "gatehouse"], "exp": now + 60, "nbf": now - 5, "iat": now, "scope": "a b"}),
        ('{"alg":"HS512"}', {"iss": "https://local.test", "aud": "gatehouse", "exp": now - 10, "scp": ["a"]}),
        ('{"alg":"HS256","crit":["x"]}', {"iss": "https://local.test", "aud": "gatehouse", "exp": now + 1.5}),
    ]
    signed_seeds = [bytes([1 | (n % 3) << 4]) + f"{header}\n{json.dumps(claims)}".encode() for n, (header, claims) in enumerate(signed)]
    jwks = [b"\x02" + json.dumps(fixture[key]).encode() for key in ("jwks", "mixed_jwks")]
    jwks += [b"\x02" + data for data in files("Tests/GatehouseConfigTests/Golden/keys")]
    json_seeds = [b"\x03" + s.encode("utf-8", "surrogatepass") for s in lit("Tests/GatehouseAuthTests/JSONParserTests.swift")]
    write("jwt", tokens + signed_seeds + jwks + json_seeds)

    handshake = [b"\x00" + s.encode() for s in lit("Tests/GatehouseDecisionTests/WebSocketDecisionTests.swift")]
    handshake += [b"\x00websocket\nkeep-alive, Upgrade", b"\x00h2c, WebSocket\nupgrade", b"\x000010"]
    frames = [b"\x01\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", b"\x03\x89\x80\x00\x00\x00\x00\x88\x82abcd\x62\x8a",
              b"\x05\x02\xfe\x00\x80abcd" + bytes(128) + b"\x80\x80\x00\x00\x00\x00"]
    write("websocket", handshake + frames)

    responses = [s for s in lit("Tests/GatehouseServerTests/UpstreamResponseParserTests.swift") if s.startswith("HTTP/")]
    write("upstream", [bytes([head, 0, split]) + r.encode() for r in responses for head, split in ((0, 17), (1, 40))])

    blocks = [
        "Host: a.example\r\n\r\n",
        "Host: a\r\nContent-Length: 5\r\n\r\nhello",
        "Host: a\r\nTransfer-Encoding: chunked\r\n\r\n",
        "Host: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "Host: a\r\nHost: b\r\n\r\n",
        "Host: a\r\nAuthorization: Bearer x\r\nAuthorization: Bearer y\r\n\r\n",
        "Host: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "Host: [::1]:8080\r\nX-Foo: a\r\n b\r\n\r\n",
        "Host: a\r\nX-Foo: a\r\n b\rX-Auth-Subject: alice\r\n\r\n",
        "host:a\nconnection: keep-alive\n\n",
        "Host: a\r\nX_Real_IP: 1.2.3.4\r\nForwarded: for=6.6.6.6\r\n\r\n",
    ]
    write("head", [bytes([flags]) + b.encode() for b in blocks for flags in (1, 0, 3)])
    write("rawhead", [b"\x00\x10" + line.encode() + b.encode()
                      for b in blocks for line in ("GET / HTTP/1.1\r\n", "POST http://a/x?y HTTP/1.0\n")]
          + [b"\x00\x05GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n", b"\x00\x20GET / HTTP/1.1\r\nX: a\x0bb\r\nHost: a\r\n\r\n"])
    fwd_headers = {
        0: ["X-Forwarded-Method: POST", "X-Forwarded-Uri: /api/x?a=1", "X-Forwarded-Host: api.example.com",
            "X-Forwarded-Proto: https"],
        1: ["X-Original-Method: GET", "X-Original-URI: /api/%2e%2e/admin", "X-Forwarded-Host: h:8080"],
        2: ["GET: x", "Host: api.example.com"],
    }
    fwd = [bytes([style]) + "\n".join([target] + lines).encode()
           for style, lines in fwd_headers.items()
           for target in ("/_gatehouse/auth", "/_gatehouse/auth?x=/y", "/_gatehouse/auth/api/x?q=1", "/_gatehouse/authz")]
    fwd += [bytes([style]) + s.encode() for s in lit("Tests/GatehouseDecisionTests/ForwardAuthRequestTests.swift")
            for style in (0, 1, 2)]
    write("fwdreq", fwd)
    # Issue 9 item 15: alias keys that Yams' duplicate-key check hashes again at every level
    # (minutes to compose ~600 bytes), billion laughs, nested merge keys.
    bomb = ["k0: &k0 [a, b, c, d, e, f, g, h]"]
    bomb += [f"k{i}: &k{i} {{? *k{i-1} : 1, ? [*k{i-1}] : 2, ? [[*k{i-1}]] : 3}}" for i in range(1, 12)]
    laughs = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    laughs += [f"a{i}: &a{i} [" + ", ".join([f"*a{i-1}"] * 10) + "]" for i in range(1, 9)]
    merge = ["m0: &m0 {a: 1, b: 2}"]
    merge += [f"m{i}: &m{i} {{<<: [*m{i-1}, *m{i-1}], k{i}: 1, x{i}: *m{i-1}}}" for i in range(1, 12)]
    bombs = ["\n".join(lines + ["routes: []", ""]) for lines in (bomb, laughs, merge)]
    write("config", list(files("Tests/GatehouseConfigTests/Golden", "Tests/GatehouseConfigTests/Golden/policy_files.d", ext=".yaml"))
          + bombs)


if __name__ == "__main__":
    sys.exit(main())
