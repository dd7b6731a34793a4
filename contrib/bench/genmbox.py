#!/usr/bin/env python3
"""Write a deterministic, realistic mbox of an exact size (Python 3 standard library only).

    genmbox.py SIZE OUTPUT [--seed N] [--meta FILE]

SIZE is a byte count with an optional K/M/G suffix (binary: 1M = 1048576). The same
SIZE and seed always give the same bytes (the generator version is GEN_VERSION; bump
it when the output changes, so that cached mailboxes are rebuilt).

What is in it, so that a POP server's fast path meets what real spools hold:
- `From ` separator lines (mboxo/mboxrd style, blank line before each), `>From `
  quoted lines in bodies, a few `>>From ` ones;
- headers as MTAs write them (Received chains, folded lines, Message-ID, MIME);
- mostly 2-20 KiB plain-text and HTML messages, some 20-100 KiB threads, and a few
  100 KiB-1 MiB messages with base64 attachments (76-column lines);
- long lines: HTML bodies on one line (4-40 KiB) and a few single lines over 128 KiB
  (bigger than any sensible I/O buffer);
- a few messages whose lines end in CR LF (as some MDAs store them), a few 8-bit
  UTF-8 lines (Content-Transfer-Encoding: 8bit);
- the last message is cut to fit so that the file has exactly SIZE bytes and ends in LF.

Speed: a pool of a few hundred bodies is built once (a few MiB), then messages are
written by pairing a fresh header with a body from the pool, so 1 GiB takes seconds.
The optional --meta file gets JSON: size, messages, lf (LF count), crlf (CR LF count);
a POP1 server's RCEV count for the file is size + lf - crlf.
"""

import base64
import json
import random
import sys

GEN_VERSION = 1

WORDS = (
    "the of and to a in is it you that he was for on are with as his they be at one "
    "have this from or had by hot word but what some we can out other were all there "
    "when up use your how said an each she which do their time if will way about many "
    "then them write would like so these her long make thing see him two has look more "
    "day could go come did number sound no most people my over know water than call "
    "first who may down side been now find any new work part take get place made live "
    "where after back little only round man year came show every good me give our under "
    "name very through just form sentence great think say help low line differ turn "
    "cause much mean before move right boy old too same tell does set three want air "
    "well also play small end put home read hand port large spell add even land here "
    "must big high such follow act why ask men change went light kind off need house "
    "picture try us again animal point mother world near build self earth father head "
    "stand own page should country found answer school grow study still learn plant "
    "cover food sun four between state keep eye never last let thought city tree cross "
    "farm hard start might story saw far sea draw left late run while press close night "
    "real life few north meeting budget quarterly report server mailbox invoice release "
    "deadline review patch kernel build deploy ticket schedule agenda minutes attached "
    "regards thanks please find below update status project customer backup migration"
).split()

UTF8_LINES = [
    "Grüße aus München, und schönen Dank für die Blumen! Bis nächste Woche.",
    "Le café était très bon ; à bientôt, François — naïve façade, élève, où ?",
    "Привет! Встреча перенесена на четверг, в 15:00. Повестка дня во вложении.",
    "会議は木曜日の午後三時に変更されました。よろしくお願いします。",
    "Ελπίζω να είστε καλά. Τα έγγραφα επισυνάπτονται στο μήνυμα.",
    "Żółć gęślą jaźń — zażółć gęślą jaźń; dziękuję bardzo za pomoc.",
    "Ça coûte 25 € ou £21, ¿vale? ¡Olé! Smörgåsbord på fredag. ✓ ✔ ☃ 🙂",
]

FIRST = ("alice bob carol dave erin frank grace heidi ivan judy mallory niaj olivia peggy "
         "rupert sybil trent victor walter xavier yolanda zoe").split()
DOMAINS = ("example.org example.com example.net mail.example.org lists.example.com "
           "corp.example list.debian.example univ.example.edu").split()
DAYS = "Mon Tue Wed Thu Fri Sat Sun".split()
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def parse_size(s):
    s = s.strip()
    mult = 1
    suffix = s[-1:].upper()
    if suffix in ("K", "M", "G", "T"):
        mult = 1024 ** ("KMGT".index(suffix) + 1)
        s = s[:-1]
        if s[-1:].upper() == "I":  # accept 1Mi, 1GiB is not accepted: keep it simple
            s = s[:-1]
    return int(float(s) * mult)


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    # ---- text pieces -------------------------------------------------------
    def sentence(self):
        r = self.r
        n = r.randint(4, 18)
        w = [r.choice(WORDS) for _ in range(n)]
        w[0] = w[0].capitalize()
        return " ".join(w) + r.choice(".....?!")

    def paragraph(self, width):
        """A paragraph wrapped at about `width` columns; returns a list of lines."""
        r = self.r
        words = " ".join(self.sentence() for _ in range(r.randint(2, 7))).split(" ")
        lines, cur, n = [], [], 0
        for w in words:
            if n + len(w) + 1 > width and cur:
                lines.append(" ".join(cur))
                cur, n = [], 0
            cur.append(w)
            n += len(w) + 1
        if cur:
            lines.append(" ".join(cur))
        return lines

    def text_body(self, target, quote_from=True, utf8=False, long_line=0):
        """Plain text of about `target` bytes, wrapped at 60-78 columns."""
        r = self.r
        out = []
        size = 0
        width = r.randint(60, 78)
        while size < target:
            roll = r.random()
            if roll < 0.10:
                # a quoted reply block
                para = ["> " + l for l in self.paragraph(width - 2)]
            elif roll < 0.13 and quote_from:
                # mbox quoting: a body line that began with "From " (or ">From ")
                para = [r.choice([">From ", ">From ", ">From ", ">>From "])
                        + " ".join(r.choice(WORDS) for _ in range(r.randint(3, 10)))]
                para += self.paragraph(width)
            elif roll < 0.16 and utf8:
                para = [r.choice(UTF8_LINES) for _ in range(r.randint(1, 3))]
            elif roll < 0.18:
                # a log excerpt / URL list: longer lines
                para = ["https://www.%s/%s?id=%d&ref=%s" % (r.choice(DOMAINS),
                        "/".join(r.choice(WORDS) for _ in range(r.randint(2, 8))),
                        r.randint(1, 10**9), r.choice(WORDS)) for _ in range(r.randint(1, 4))]
            else:
                para = self.paragraph(width)
            para.append("")
            blk = "\n".join(para) + "\n"
            out.append(blk)
            size += len(blk.encode())
        if long_line:
            out.insert(r.randint(0, len(out)), self.long_line(long_line) + "\n")
        out.append("-- \n%s\n" % r.choice(FIRST).capitalize())
        # an unquoted "From " at the start of a body line would split the message
        return "\n".join(">" + l if l.startswith("From ") else l for l in "".join(out).split("\n"))

    def long_line(self, n):
        """One line of about n bytes, no LF (an unwrapped paragraph, CSV or JSON dump)."""
        r = self.r
        kind = r.random()
        parts, size = [], 0
        if kind < 0.5:
            while size < n:
                s = self.sentence() + " "
                parts.append(s)
                size += len(s)
        else:
            parts.append('{"records":[')
            while size < n:
                s = '{"id":%d,"name":"%s","tags":["%s","%s"],"value":%d.%02d},' % (
                    r.randint(1, 10**7), r.choice(WORDS), r.choice(WORDS), r.choice(WORDS),
                    r.randint(0, 99999), r.randint(0, 99))
                parts.append(s)
                size += len(s)
            parts.append("{}]}")
        return "".join(parts)[:n]

    def html_body(self, target):
        """HTML as many mailers send it: one huge line (or a few), no wrapping."""
        r = self.r
        parts = ["<html><head><meta charset=\"utf-8\"><style>p{margin:0}</style></head><body>"]
        size = len(parts[0])
        while size < target:
            s = "<p style=\"font-family:Arial,sans-serif;font-size:11pt\">%s</p>" % (
                " ".join(self.sentence() for _ in range(r.randint(1, 5))))
            parts.append(s)
            size += len(s)
        parts.append("</body></html>")
        if r.random() < 0.5:
            return "".join(parts) + "\n"
        # a few lines broken at random tag boundaries
        out, line = [], []
        for p in parts:
            line.append(p)
            if r.random() < 0.05:
                out.append("".join(line))
                line = []
        out.append("".join(line))
        return "\n".join(out) + "\n"

    def b64_attachment(self, nbytes):
        data = self.r.randbytes(nbytes)
        return base64.encodebytes(data).decode("ascii")  # 76-column lines, LF

    # ---- bodies ------------------------------------------------------------
    def body(self, kind):
        """Returns (content-type header lines, body text) for one message kind."""
        r = self.r
        if kind == "text":
            target = int(r.triangular(1500, 19000, 4000))
            return (["Content-Type: text/plain; charset=us-ascii", "Content-Transfer-Encoding: 7bit"],
                    self.text_body(target))
        if kind == "utf8":
            target = int(r.triangular(1500, 16000, 3000))
            return (["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"],
                    self.text_body(target, utf8=True))
        if kind == "thread":
            target = int(r.triangular(20000, 100000, 30000))
            return (["Content-Type: text/plain; charset=us-ascii"], self.text_body(target))
        if kind == "longline":
            # text with one line of 4-40 KiB
            target = int(r.triangular(2000, 15000, 4000))
            return (["Content-Type: text/plain; charset=us-ascii"],
                    self.text_body(target, long_line=r.randint(4097, 40960)))
        if kind == "hugeline":
            # a line over 128 KiB: bigger than any I/O buffer a server should use
            return (["Content-Type: text/plain; charset=us-ascii"],
                    self.text_body(2000, long_line=r.randint(131073, 300000)))
        if kind == "html":
            bnd = "=_alt_%016x" % r.getrandbits(64)
            txt = self.text_body(int(r.triangular(800, 6000, 1500)))
            html = self.html_body(int(r.triangular(3000, 40000, 8000)))
            body = ("This is a multi-part message in MIME format.\n\n--%s\n"
                    "Content-Type: text/plain; charset=utf-8\n\n%s\n--%s\n"
                    "Content-Type: text/html; charset=utf-8\n\n%s\n--%s--\n") % (
                        bnd, txt, bnd, html, bnd)
            return (["MIME-Version: 1.0",
                     "Content-Type: multipart/alternative;\n\tboundary=\"%s\"" % bnd], body)
        if kind == "attach":
            bnd = "=_mix_%016x" % r.getrandbits(64)
            nbytes = int(r.triangular(70000, 750000, 150000))  # base64: x4/3 => ~100 KiB-1 MiB
            name = "%s-%s.%s" % (r.choice(WORDS), r.randint(1, 999), r.choice(["pdf", "zip", "jpg", "docx"]))
            body = ("This is a multi-part message in MIME format.\n\n--%s\n"
                    "Content-Type: text/plain; charset=us-ascii\n\n%s\n--%s\n"
                    "Content-Type: application/octet-stream; name=\"%s\"\n"
                    "Content-Transfer-Encoding: base64\n"
                    "Content-Disposition: attachment; filename=\"%s\"\n\n%s\n--%s--\n") % (
                        bnd, self.text_body(r.randint(300, 2000)), bnd, name, name,
                        self.b64_attachment(nbytes), bnd)
            return (["MIME-Version: 1.0",
                     "Content-Type: multipart/mixed;\n\tboundary=\"%s\"" % bnd], body)
        raise ValueError(kind)

    # ---- headers -----------------------------------------------------------
    def addr(self):
        r = self.r
        return "%s.%s@%s" % (r.choice(FIRST), r.choice(FIRST), r.choice(DOMAINS))

    def header(self, i, t, ctype):
        r = self.r
        # t: seconds since an epoch-ish base; make a ctime-like date without time module
        day = t // 86400
        sec = t % 86400
        y = 2020 + (day // 365) % 7
        mon = (day // 30) % 12
        dom = 1 + day % 28
        wd = DAYS[day % 7]
        hh, mm, ss = sec // 3600, (sec // 60) % 60, sec % 60
        sender = self.addr()
        rcpt = "bench@%s" % DOMAINS[0]
        from_line = "From %s %s %s %2d %02d:%02d:%02d %d" % (sender, wd, MONTHS[mon], dom, hh, mm, ss, y)
        date = "%s, %d %s %d %02d:%02d:%02d +0000" % (wd, dom, MONTHS[mon], y, hh, mm, ss)
        qid = "%X" % r.getrandbits(40)
        h = [from_line, "Return-Path: <%s>" % sender]
        for hop in range(r.randint(1, 4)):
            h.append("Received: from mx%d.%s (mx%d.%s [192.0.2.%d])\n\tby mail.%s (Postfix) with ESMTPS id %s%d\n"
                     "\tfor <%s>; %s" % (hop, r.choice(DOMAINS), hop, r.choice(DOMAINS), r.randint(1, 254),
                                         DOMAINS[0], qid, hop, rcpt, date))
        if r.random() < 0.3:
            h.append("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s; s=sel1;\n\th=from:to:subject:date:message-id;\n"
                     "\tbh=%s;\n\tb=%s" % (r.choice(DOMAINS), base64.b64encode(r.randbytes(32)).decode(),
                                          base64.b64encode(r.randbytes(128)).decode()))
        subj = " ".join(r.choice(WORDS) for _ in range(r.randint(2, 9)))
        if r.random() < 0.3:
            subj = "Re: " + subj
        h += ["Date: %s" % date,
              "From: %s <%s>" % (r.choice(FIRST).capitalize(), sender),
              "To: Bench User <%s>" % rcpt,
              "Subject: %s" % subj,
              "Message-ID: <%d.%s@%s>" % (i, qid, r.choice(DOMAINS))]
        if r.random() < 0.2:
            h.append("List-Id: <%s.lists.example.com>" % r.choice(WORDS))
        h += ctype
        h.append("X-Bench-Seq: %d" % i)
        return "\n".join(h) + "\n\n"


# kind, weight; weights chosen so that 1 GiB holds ~40 000 messages, 90 % of them 2-20 KiB
KINDS = [("text", 62), ("utf8", 6), ("html", 18), ("longline", 4), ("thread", 6),
         ("attach", 3.2), ("hugeline", 0.8)]
# the first messages of every mailbox, so that even 1 MiB shows each feature
FIRST_KINDS = ["text", "utf8", "longline", "html", "text", "crlf-text", "thread", "text", "hugeline"]
POOL_PER_KIND = {"text": 160, "utf8": 24, "html": 64, "longline": 16, "thread": 24, "attach": 12, "hugeline": 4}
CRLF_FRACTION = 0.02


def generate(size, out, seed=1):
    g = Gen(seed)
    # the pool: bodies reused with fresh headers
    pool = {}
    for kind, n in POOL_PER_KIND.items():
        pool[kind] = [g.body(kind) for _ in range(n)]
    kinds = [k for k, _ in KINDS]
    weights = [w for _, w in KINDS]
    r = g.r

    total = 0
    lf = 0
    crlf = 0
    i = 0
    t = 40_000_000
    buf = []
    bufsize = 0

    def emit(b):
        nonlocal total, bufsize
        buf.append(b)
        bufsize += len(b)
        total += len(b)
        if bufsize >= 1 << 22:
            flush()

    def flush():
        nonlocal bufsize, lf, crlf
        data = b"".join(buf)
        lf += data.count(b"\n")
        crlf += data.count(b"\r\n")
        out.write(data)
        buf.clear()
        bufsize = 0

    while True:
        if i < len(FIRST_KINDS):
            kind = FIRST_KINDS[i]
        else:
            kind = r.choices(kinds, weights)[0]
            if kind == "text" and r.random() < CRLF_FRACTION / 0.62:
                kind = "crlf-text"
        use_crlf = kind.startswith("crlf-")
        base = kind[5:] if use_crlf else kind
        ctype, body = r.choice(pool[base])
        t += r.randint(30, 7200)
        sep = "\n" if i else ""  # blank line between messages
        msg = (sep + g.header(i, t, ctype) + body).encode("utf-8")
        if use_crlf:
            # the From_ line stays LF (the MDA wrote it); the message itself is CR LF
            nl = msg.index(b"\n", 1 if sep else 0)
            msg = msg[:nl + 1] + msg[nl + 1:].replace(b"\n", b"\r\n")
        remaining = size - total
        if len(msg) + 4096 > remaining:
            # the last message: a text message cut to exactly `remaining` bytes
            if remaining <= 0:
                break
            hdr = (sep + g.header(i, t, ["Content-Type: text/plain; charset=us-ascii"])).encode()
            filler = hdr + g.text_body(remaining + 200).encode()
            if len(hdr) + 2 > remaining:
                # too small for a message: pad the previous one's body with a text line
                filler = (("x" * (remaining - 1)) + "\n").encode() if remaining > 1 else b"\n"
            else:
                filler = filler[:remaining - 1] + b"\n"
            emit(filler)
            i += 1
            break
        emit(msg)
        i += 1
    flush()
    return {"version": GEN_VERSION, "seed": seed, "size": total, "messages": i, "lf": lf, "crlf": crlf}


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("size")
    ap.add_argument("output")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--meta", help="write JSON facts about the mailbox here")
    a = ap.parse_args(argv)
    size = parse_size(a.size)
    with open(a.output, "wb") as f:
        meta = generate(size, f, a.seed)
    assert meta["size"] == size, meta
    if a.meta:
        with open(a.meta, "w") as f:
            json.dump(meta, f)
            f.write("\n")
    print(json.dumps(meta))


if __name__ == "__main__":
    main(sys.argv[1:])
