"""A small Jupyter client for the notebook tests and bench/notebook_proxy.py:
the REST calls a page makes (kernels, contents) and kernel execution over
the WebSocket channels (Jupyter's messaging protocol v5, as JSON frames),
with tornado (a dependency of Debian's python3-notebook)."""
import json
import urllib.request
import uuid

from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect


def rest(base, path, method="GET", body=None, headers=None):
    """base: http://host:port/prefix/ ; returns (status, parsed JSON or text)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            text = r.read().decode()
            status = r.status
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        status = e.code
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


class Kernel:
    """One kernel's channels over a WebSocket (through the proxy or not)."""

    def __init__(self, ws):
        self.ws = ws
        self.session = uuid.uuid4().hex

    @classmethod
    async def connect(cls, base, kernel_id, headers=None):
        url = base.replace("http://", "ws://", 1) + f"api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}"
        ws = await websocket_connect(HTTPRequest(url, headers=dict(headers or {}), connect_timeout=30, request_timeout=60))
        return cls(ws)

    async def execute(self, code, timeout_messages=10000):
        """Runs `code`; returns (status, text of execute_result or stream output)."""
        msg_id = uuid.uuid4().hex
        self.ws.write_message(json.dumps({
            "header": {"msg_id": msg_id, "username": "test", "session": self.session, "msg_type": "execute_request",
                       "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
        }))
        # Done when the shell's execute_reply and iopub's "idle" for this
        # request have both come (the two channels are not ordered).
        out, status, idle = [], None, False
        for _ in range(timeout_messages):
            raw = await self.ws.read_message()
            if raw is None:
                raise RuntimeError("the kernel's WebSocket closed")
            m = json.loads(raw)
            if m.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            t = m["header"]["msg_type"]
            if t == "execute_result":
                out.append(m["content"]["data"].get("text/plain", ""))
            elif t == "stream":
                out.append(m["content"]["text"])
            elif t == "error":
                out.append(m["content"]["ename"] + ": " + m["content"]["evalue"])
            elif t == "execute_reply":
                status = m["content"]["status"]
            elif t == "status" and m["content"].get("execution_state") == "idle":
                idle = True
            if status is not None and idle:
                return status, "".join(out)
        raise RuntimeError("no execute_reply")

    def close(self):
        self.ws.close()
