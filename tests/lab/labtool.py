#!/usr/bin/python3
"""Helpers for tests/lab/lab.sh (Python 3 standard library; python3-grpcio for the CRI client).

Subcommands:
  keyid CERT                       libtrust key id of a certificate's public key
  token-server --config JSON       a GitLab-like /jwt/auth token server
  mint --config JSON --sub USER --scope repository:NAME:ACTIONS ...
                                   print a registry token signed like the token server's
  push --registry URL --token T --repo NAME --tag TAG --text TEXT
                                   build a tiny image in memory and push it over the
                                   registry HTTP API (HEAD blob, POST upload, PUT, PUT manifest)
  cri-pull --socket S --image REF [--user U --pass P] [--timeout SEC]
  cri-status --socket S [--verbose]
  cri-images --socket S
  cri-rmi --socket S --image REF
                                   a tiny CRI client (runtime.v1) over containerd's socket
"""

import argparse
import base64
import gzip
import hashlib
import http.client
import http.server
import io
import json
import os
import platform
import secrets
import socketserver
import subprocess
import sys
import tarfile
import time
import urllib.parse

# --------------------------------------------------------------------------- JWT / libtrust


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def spki_der_from_cert(cert_path: str) -> bytes:
    pem = subprocess.run(
        ["openssl", "x509", "-in", cert_path, "-pubkey", "-noout"],
        check=True, capture_output=True).stdout.decode()
    body = "".join(l for l in pem.splitlines() if l and not l.startswith("-----"))
    return base64.b64decode(body)


def libtrust_kid(cert_path: str) -> str:
    """base32(sha256(DER SubjectPublicKeyInfo)[:30]) without '=', groups of 4 joined by ':'."""
    digest = hashlib.sha256(spki_der_from_cert(cert_path)).digest()[:30]
    s = base64.b32encode(digest).decode().rstrip("=")
    return ":".join(s[i:i + 4] for i in range(0, len(s), 4))


def sign_jwt(key_path: str, kid: str, claims: dict) -> str:
    header = {"typ": "JWT", "alg": "RS256", "kid": kid}
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                     b64url(json.dumps(claims, separators=(",", ":")).encode()))
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_path],
                         input=signing_input.encode(), check=True, capture_output=True).stdout
    return signing_input + "." + b64url(sig)


def load_config(path: str) -> dict:
    with open(path) as f:
        cfg = json.load(f)
    if not cfg.get("kid"):
        cfg["kid"] = libtrust_kid(cfg["cert"])
    return cfg


def parse_scopes(values):
    """'repository:root/gition/backend:pull,push' (several params or space separated)."""
    out = []
    for v in values:
        for item in v.split():
            parts = item.split(":")
            if len(parts) < 3:
                continue
            typ, actions = parts[0], parts[-1]
            name = ":".join(parts[1:-1])
            out.append((typ, name, [a for a in actions.split(",") if a]))
    return out


def rights_for(cfg: dict, user: str, typ: str, name: str):
    """Actions a user holds on a resource. Rules: {"root/gition": ["pull"]} covers
    root/gition and root/gition/<anything>; "*" covers every repository."""
    u = cfg["users"].get(user)
    if u is None:
        return set()
    if typ == "registry":
        return set(u.get("registry", []))
    if typ != "repository":
        return set()
    got = set()
    for rule, actions in u.get("rights", {}).items():
        if rule == "*" or name == rule or name.startswith(rule + "/"):
            got |= set(actions)
    return got


def make_token(cfg: dict, sub: str, access: list) -> str:
    now = int(time.time())
    claims = {
        "iss": cfg["issuer"],
        "iat": now,
        "jti": secrets.token_hex(16),
        "nbf": now - 5,
        "exp": now + int(cfg.get("lifetime", 300)),
        "aud": cfg["service"],
        "sub": sub,
        "access": access,
    }
    return sign_jwt(cfg["key"], cfg["kid"], claims)


def check_password(cfg: dict, user: str, password: str) -> bool:
    if user not in cfg["users"]:
        return False
    # htpasswd -v: exit 0 on match (bcrypt file written by `htpasswd -B`)
    r = subprocess.run(["htpasswd", "-v", "-i", cfg["htpasswd"], user],
                       input=password.encode(), capture_output=True)
    return r.returncode == 0


GITLAB_401 = ("HTTP Basic: Access denied. If a password was provided for Git authentication, the "
              "password was incorrect or you're required to use a token instead of a password. If "
              "a token was provided, it was either incorrect, expired, or improperly scoped. See "
              "http://10.88.1.1/help/user/profile/account/two_factor_authentication#troubleshooting")


class TokenHandler(http.server.BaseHTTPRequestHandler):
    def version_string(self):
        return "nginx"
    protocol_version = "HTTP/1.1"
    cfg: dict = {}

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S"),
                                         self.client_address[0], fmt % args))
        sys.stderr.flush()

    def send(self, status, body=b"", ctype="application/json", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def drain(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)

    def do_POST(self):
        # GitLab routes /jwt/auth for GET only: a POST (containerd's OAuth2 attempt) gets 404,
        # after which containerd falls back to GET with Basic credentials.
        self.drain()
        self.send(404, "404 Not Found\n", "text/plain; charset=utf-8")

    do_PUT = do_POST
    do_DELETE = do_POST

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/":
            host = self.headers.get("Host", "10.88.1.1")
            return self.send(302, "<html><body>You are being <a href=\"http://%s/users/sign_in\">"
                             "redirected</a>.</body></html>" % host, "text/html; charset=utf-8",
                             {"Location": "http://%s/users/sign_in" % host})
        if url.path == "/users/sign_in":
            return self.send(200, "<html><head><title>Sign in · GitLab</title></head>"
                             "<body>GitLab (pulldoctor lab)</body></html>\n",
                             "text/html; charset=utf-8")
        if url.path == "/-/health":
            return self.send(200, "GitLab OK", "text/plain")
        if url.path != "/jwt/auth":
            return self.send(404, "404 Not Found\n", "text/plain; charset=utf-8")
        q = urllib.parse.parse_qs(url.query)
        cfg = self.cfg
        if q.get("service", [""])[0] != cfg["service"]:
            return self.send(404, b"", "text/plain")
        user = None
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                u, _, p = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except Exception:
                u, p = "", ""
            if not check_password(cfg, u, p):
                self.log_message("bad credentials for user=%s", u)
                return self.send(401, {"errors": [{"code": "UNAUTHORIZED", "message": GITLAB_401}]})
            user = u
        access = []
        for typ, name, actions in parse_scopes(q.get("scope", [])):
            if user is None:
                continue  # every project here is private: anonymous gets nothing
            allowed = [a for a in actions if a in rights_for(cfg, user, typ, name)]
            if allowed:
                access.append({"type": typ, "name": name, "actions": allowed})
        if user is None and not access:
            self.log_message("anonymous request denied: scope=%s", " ".join(q.get("scope", [])) or "-")
            return self.send(403, {"errors": [{"code": "DENIED", "message": "access forbidden"}]})
        self.log_message("token for user=%s scope=%s access=%s", user or "(anonymous)",
                         " ".join(q.get("scope", [])) or "-", json.dumps(access))
        # like GitLab: only "token" in the body
        return self.send(200, {"token": make_token(cfg, user or "", access)})


class ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def cmd_token_server(a):
    cfg = load_config(a.config)
    TokenHandler.cfg = cfg
    host, _, port = a.listen.rpartition(":")
    srv = ThreadingServer((host or "0.0.0.0", int(port)), TokenHandler)
    sys.stderr.write("token server listening on %s, issuer %s, kid %s\n" %
                     (a.listen, cfg["issuer"], cfg["kid"]))
    sys.stderr.flush()
    srv.serve_forever()


def cmd_mint(a):
    cfg = load_config(a.config)
    access = [{"type": t, "name": n, "actions": acts} for t, n, acts in parse_scopes(a.scope)]
    print(make_token(cfg, a.sub, access))


def cmd_keyid(a):
    print(libtrust_kid(a.cert))


# --------------------------------------------------------------------------- image push

def go_arch():
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
            "s390x": "s390x", "riscv64": "riscv64"}.get(m, m)


def build_image(text: str):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        d = tarfile.TarInfo("srv/")
        d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, 0
        tf.addfile(d)
        data = (text + "\n").encode()
        f = tarfile.TarInfo("srv/gition.txt")
        f.size, f.mode, f.mtime = len(data), 0o644, 0
        tf.addfile(f, io.BytesIO(data))
    layer_tar = raw.getvalue()
    layer = gzip.compress(layer_tar, mtime=0)
    diff_id = "sha256:" + hashlib.sha256(layer_tar).hexdigest()
    config = json.dumps({
        "architecture": go_arch(), "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/true"], "Env": ["GITION=" + text]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "pulldoctor lab"}],
    }, separators=(",", ":")).encode()

    def desc(mt, blob):
        return {"mediaType": mt, "size": len(blob), "digest": "sha256:" + hashlib.sha256(blob).hexdigest()}
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": desc("application/vnd.docker.container.image.v1+json", config),
        "layers": [desc("application/vnd.docker.image.rootfs.diff.tar.gzip", layer)],
    }, indent=3).encode()
    return [config, layer], manifest


def http_req(base, method, path, token, body=None, headers=None):
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=30)
    h = {"Authorization": "Bearer " + token}
    h.update(headers or {})
    if body is not None:
        h["Content-Length"] = str(len(body))
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, r.headers, data


def cmd_push(a):
    blobs, manifest = build_image(a.text)
    base = a.registry.rstrip("/")
    for blob in blobs:
        dg = "sha256:" + hashlib.sha256(blob).hexdigest()
        st, _, _ = http_req(base, "HEAD", "/v2/%s/blobs/%s" % (a.repo, dg), a.token)
        if st == 200:
            continue
        st, hd, body = http_req(base, "POST", "/v2/%s/blobs/uploads/" % a.repo, a.token, b"")
        if st != 202:
            sys.exit("push: POST upload: %s %s" % (st, body.decode(errors="replace")))
        loc = urllib.parse.urlsplit(hd["Location"])
        q = loc.query + ("&" if loc.query else "") + "digest=" + urllib.parse.quote(dg)
        st, _, body = http_req(base, "PUT", loc.path + "?" + q, a.token, blob,
                               {"Content-Type": "application/octet-stream"})
        if st != 201:
            sys.exit("push: PUT blob: %s %s" % (st, body.decode(errors="replace")))
    st, hd, body = http_req(base, "PUT", "/v2/%s/manifests/%s" % (a.repo, a.tag), a.token, manifest,
                            {"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})
    if st != 201:
        sys.exit("push: PUT manifest: %s %s" % (st, body.decode(errors="replace")))
    print("pushed %s:%s %s" % (a.repo, a.tag, hd.get("Docker-Content-Digest")))


# --------------------------------------------------------------------------- CRI (runtime.v1)
# Hand-encoded protobuf for the few messages needed (k8s.io/cri-api runtime/v1 api.proto).

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_bytes(field: int, data) -> bytes:
    if isinstance(data, str):
        data = data.encode()
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def pb_bool(field: int, v: bool) -> bytes:
    return _varint(field << 3 | 0) + _varint(1 if v else 0)


def pb_varint(buf: bytes, i: int):
    """-> (value, next index) of the protobuf varint at buf[i]."""
    v, shift = 0, 0
    while True:
        b = buf[i]; i += 1
        v |= (b & 0x7F) << shift; shift += 7
        if not b & 0x80:
            return v, i


def pb_decode(buf: bytes):
    """-> list of (field, wiretype, value) ; value is int or bytes."""
    i, out = 0, []
    while i < len(buf):
        key, i = pb_varint(buf, i)
        field, wt = key >> 3, key & 7
        if wt == 0:
            v, i = pb_varint(buf, i)
            out.append((field, wt, v))
        elif wt == 2:
            ln, i = pb_varint(buf, i)
            out.append((field, wt, buf[i:i + ln])); i += ln
        elif wt == 1:
            out.append((field, wt, buf[i:i + 8])); i += 8
        elif wt == 5:
            out.append((field, wt, buf[i:i + 4])); i += 4
        else:
            raise ValueError("unsupported wire type %d" % wt)
    return out


def grpc_call(socket_path, method, request: bytes, timeout):
    import grpc  # python3-grpcio
    ch = grpc.insecure_channel("unix://" + os.path.abspath(socket_path))
    try:
        fn = ch.unary_unary(method, request_serializer=None, response_deserializer=None)
        return fn(request, timeout=timeout)
    finally:
        ch.close()


def go_code(code) -> str:
    # grpc.StatusCode.DEADLINE_EXCEEDED -> DeadlineExceeded (as Go's codes.Code prints)
    return "".join(p.capitalize() for p in code.name.split("_"))


def rpc_fail(e):
    msg = "rpc error: code = %s desc = %s" % (go_code(e.code()), e.details())
    print(msg, file=sys.stderr)
    sys.exit(1)


def cmd_cri_pull(a):
    import grpc
    req = pb_bytes(1, pb_bytes(1, a.image))  # ImageSpec{image=1}
    if a.user is not None or a.password is not None or a.auth or a.registry_token:
        auth = b""
        if a.user is not None:
            auth += pb_bytes(1, a.user)
        if a.password is not None:
            auth += pb_bytes(2, a.password)
        if a.auth:
            auth += pb_bytes(3, a.auth)
        if a.registry_token:
            auth += pb_bytes(6, a.registry_token)
        req += pb_bytes(2, auth)  # AuthConfig auth=2
    t0 = time.time()
    try:
        resp = grpc_call(a.socket, "/runtime.v1.ImageService/PullImage", req, a.timeout)
    except grpc.RpcError as e:
        print("pull failed after %.1fs" % (time.time() - t0), file=sys.stderr)
        rpc_fail(e)
    ref = ""
    for f, wt, v in pb_decode(resp):
        if f == 1 and wt == 2:
            ref = v.decode()
    print("Image is up to date for %s (%.1fs)" % (ref, time.time() - t0))


def cmd_cri_status(a):
    import grpc
    try:
        resp = grpc_call(a.socket, "/runtime.v1.RuntimeService/Status", pb_bool(1, a.verbose), 10)
    except grpc.RpcError as e:
        rpc_fail(e)
    out = {"conditions": [], "info": {}}
    for f, wt, v in pb_decode(resp):
        if f == 1:  # RuntimeStatus{repeated RuntimeCondition conditions=1}
            for cf, cwt, cv in pb_decode(v):
                if cf == 1:
                    cond = {}
                    for kf, kwt, kv in pb_decode(cv):
                        name = {1: "type", 2: "status", 3: "reason", 4: "message"}.get(kf)
                        if name:
                            cond[name] = bool(kv) if kf == 2 else kv.decode()
                    out["conditions"].append(cond)
        elif f == 2:  # map<string,string> info
            k = val = ""
            for kf, kwt, kv in pb_decode(v):
                if kf == 1:
                    k = kv.decode()
                elif kf == 2:
                    val = kv.decode()
            try:
                out["info"][k] = json.loads(val)
            except ValueError:
                out["info"][k] = val
    print(json.dumps(out, indent=2))


def cmd_cri_images(a):
    import grpc
    try:
        resp = grpc_call(a.socket, "/runtime.v1.ImageService/ListImages", b"", 10)
    except grpc.RpcError as e:
        rpc_fail(e)
    for f, wt, v in pb_decode(resp):
        if f != 1:
            continue
        img = {"id": "", "tags": [], "digests": [], "size": 0}
        for kf, kwt, kv in pb_decode(v):
            if kf == 1:
                img["id"] = kv.decode()
            elif kf == 2:
                img["tags"].append(kv.decode())
            elif kf == 3:
                img["digests"].append(kv.decode())
            elif kf == 4:
                img["size"] = kv
        print("%s\t%s\t%s\t%d" % (img["id"], ",".join(img["tags"]), ",".join(img["digests"]), img["size"]))


def cmd_cri_rmi(a):
    import grpc
    try:
        grpc_call(a.socket, "/runtime.v1.ImageService/RemoveImage", pb_bytes(1, pb_bytes(1, a.image)), 30)
    except grpc.RpcError as e:
        rpc_fail(e)
    print("Deleted: %s" % a.image)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = p.add_subparsers(dest="cmd", required=True)
    s = sp.add_parser("keyid"); s.add_argument("cert"); s.set_defaults(fn=cmd_keyid)
    s = sp.add_parser("token-server"); s.add_argument("--config", required=True)
    s.add_argument("--listen", default="0.0.0.0:80"); s.set_defaults(fn=cmd_token_server)
    s = sp.add_parser("mint"); s.add_argument("--config", required=True)
    s.add_argument("--sub", required=True); s.add_argument("--scope", action="append", default=[])
    s.set_defaults(fn=cmd_mint)
    s = sp.add_parser("push"); s.add_argument("--registry", required=True)
    s.add_argument("--token", required=True); s.add_argument("--repo", required=True)
    s.add_argument("--tag", default="latest"); s.add_argument("--text", required=True)
    s.set_defaults(fn=cmd_push)
    s = sp.add_parser("cri-pull"); s.add_argument("--socket", required=True)
    s.add_argument("--image", required=True); s.add_argument("--user")
    s.add_argument("--pass", dest="password"); s.add_argument("--auth")
    s.add_argument("--registry-token"); s.add_argument("--timeout", type=float, default=180)
    s.set_defaults(fn=cmd_cri_pull)
    s = sp.add_parser("cri-status"); s.add_argument("--socket", required=True)
    s.add_argument("--verbose", action="store_true"); s.set_defaults(fn=cmd_cri_status)
    s = sp.add_parser("cri-images"); s.add_argument("--socket", required=True)
    s.set_defaults(fn=cmd_cri_images)
    s = sp.add_parser("cri-rmi"); s.add_argument("--socket", required=True)
    s.add_argument("--image", required=True); s.set_defaults(fn=cmd_cri_rmi)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
