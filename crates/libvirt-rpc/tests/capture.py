#!/usr/bin/env python3
"""Records the frames virsh sends (and the answers it gets) by sitting
between virsh and a libvirt-protocol server:

    capture.py LISTEN_SOCKET SERVER_SOCKET OUT_DIR PREFIX

Each client frame becomes OUT_DIR/PREFIX-NN-call-PROC.bin (the whole frame,
length word included). Serves one connection, then exits. This is how the
fixtures next to it were made (virsh 9.0, Debian's libvirt-clients)."""
import os, socket, struct, sys

listen_path, server_path, out, prefix = sys.argv[1:5]
if os.path.exists(listen_path):
    os.unlink(listen_path)
ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
ls.bind(listen_path)
ls.listen(1)
client, _ = ls.accept()
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.connect(server_path)

def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf

def read_frame(s):
    word = read_exact(s, 4)
    if word is None:
        return None
    (length,) = struct.unpack(">I", word)
    return word + read_exact(s, length - 4)

n = 0
while True:
    call = read_frame(client)
    if call is None:
        break
    prog, vers, proc, kind = struct.unpack(">IIiI", call[4:20])
    tag = "call" if kind == 0 else "msg"
    with open(os.path.join(out, f"{prefix}-{n:02d}-{tag}-{proc}.bin"), "wb") as f:
        f.write(call)
    n += 1
    server.sendall(call)
    if kind != 0:
        continue  # keepalive messages from the client get no reply here
    reply = read_frame(server)
    if reply is None:
        break
    client.sendall(reply)
