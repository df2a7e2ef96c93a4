"""Readers for the label file formats of the supported data sets (DESIGN section 4).

Each reader takes the exact on-disk format and returns a `labels.LabelTrack`:

- AVEC 2012 `.dat`: no header, one float per line, line i = video frame i at 49.979 fps; one
  file per dimension (`read_avec2012(arousal_path, valence_path)`), time i / 49.979 s.
- RECOLA gold standard ARFF (`@relation`, `@attribute` lines, `@data` rows such as
  `dev_1,0.04,-0.022925`, 40 ms step), one file per dimension.
- RECOLA original `;` CSV, header `time;FM1 ;FM2 ;FM3 ;FF1 ;FF2 ;FF3` (trailing spaces), one
  column per rater: the track holds the mean of the raters that have a value at that time
  (NaN only where all are missing) and keeps each rater in `track.raters`.
- Aff-Wild2 text: header `valence,arousal`, line i = frame i, `-5` unlabelled (frame-indexed).
- SEWA CSV: `;`, no header, `instance_name;timestamp;arousal;valence;liking`, 100 ms step.
- Generic CSV: header with `frame` (frame-indexed) or `time` (seconds) plus `valence` and
  `arousal`, separated by `,`, `;` or tabs; the header may be a `# ` comment line (as
  `numpy.savetxt(..., header=...)` writes it), and other `#` lines are comments.

Bad content raises `errors.UserError("<file>, line <n>: expected ..., got ...")`.
"""

from __future__ import annotations

import re

import numpy as np

from ast_net import errors
from ast_net.data import labels

AVEC2012_FPS = 49.979
AFFWILD2_UNLABELLED = -5.0


def read_avec2012_dat(path, fps: float = AVEC2012_FPS):
    """One AVEC 2012 `.dat` file -> (times_s, values)."""
    values = []
    for lineno, line in labels.read_lines(path):
        fields = line.split()
        if len(fields) != 1:
            raise errors.UserError(
                f"{path}, line {lineno}: expected one number per line, got {line.strip()!r}")
        values.append(labels.parse_float(fields[0], path, lineno, "a label value"))
    values = np.asarray(values, np.float64)
    return np.arange(len(values)) / float(fps), values


def read_avec2012(arousal_path, valence_path, fps: float = AVEC2012_FPS) -> labels.LabelTrack:
    """The arousal and valence `.dat` files of one AVEC 2012 session."""
    return labels.combine_dims(read_avec2012_dat(arousal_path, fps),
                               read_avec2012_dat(valence_path, fps), source=str(arousal_path))


_ATTRIBUTE = re.compile(r"""@attribute\s+('[^']*'|"[^"]*"|\S+)\s+(.+)$""", re.IGNORECASE)
_TIME_NAMES = ("frametime", "time", "frame_time", "timestamp")


def read_recola_arff(path):
    """One RECOLA gold-standard ARFF file -> (times_s, values)."""
    names, shown, data_line, lines = [], [], None, labels.read_lines(path)
    for k, (lineno, line) in enumerate(lines):
        s = line.strip()
        if not s or s.startswith("%"):
            continue
        low = s.lower()
        if low.startswith("@relation"):
            continue
        if low.startswith("@attribute"):
            m = _ATTRIBUTE.match(s)
            if not m:
                raise errors.UserError(
                    f"{path}, line {lineno}: expected '@attribute <name> <type>', got {s!r}")
            shown.append(m.group(1).strip("'\"").strip())
            names.append((shown[-1].lower(), m.group(2).strip().lower()))
            continue
        if low.startswith("@data"):
            data_line = k
            break
        raise errors.UserError(
            f"{path}, line {lineno}: expected an ARFF header line (@relation, @attribute, "
            f"@data), got {s!r}")
    if data_line is None:
        raise errors.UserError(f"{path}: expected an ARFF file with a '@data' line, found none")
    time_col = next((i for i, (n, _) in enumerate(names) if n in _TIME_NAMES), None)
    value_cols = [i for i, (n, t) in enumerate(names)
                  if i != time_col and t.startswith(("numeric", "real", "integer"))]
    gold = [i for i in value_cols if names[i][0] == "goldstandard"]
    if time_col is None or not value_cols:
        raise errors.UserError(
            f"{path}: expected attributes 'frameTime numeric' and 'GoldStandard numeric', got "
            f"{shown}")
    value_col = gold[0] if gold else value_cols[-1]
    times, values, linenos = [], [], []
    for lineno, line in lines[data_line + 1:]:
        s = line.strip()
        if not s or s.startswith("%"):
            continue
        fields = labels.split_fields(s, ",", quotechar="'")
        if len(fields) != len(names):
            raise errors.UserError(
                f"{path}, line {lineno}: expected {len(names)} comma-separated values "
                f"({', '.join(shown)}), got {len(fields)}")
        t = labels.parse_float(fields[time_col], path, lineno, "frameTime")
        times.append(t)
        values.append(labels.parse_float(fields[value_col], path, lineno, "GoldStandard"))
        linenos.append(lineno)
    if not times:
        raise errors.UserError(f"{path}: expected data rows after '@data', found none")
    times = np.asarray(times, np.float64)
    labels.check_increasing(times, linenos, path, "frameTime")
    return times, np.asarray(values, np.float64)


def read_recola_csv(path):
    """One RECOLA original-release rating CSV -> (times_s, mean values, {rater: values})."""
    lines = labels.read_lines(path)
    head_no, head = lines[0]
    names = labels.split_fields(head, ";")
    if len(names) < 2 or names[0].lower() != "time":
        raise errors.UserError(
            f"{path}, line {head_no}: expected header 'time;FM1 ;FM2 ;...' (';'-separated, "
            f"first column time), got {head.strip()!r}")
    raters = names[1:]
    times, rows, linenos = [], [], []
    for lineno, line in lines[1:]:
        if not line.strip():
            raise errors.UserError(f"{path}, line {lineno}: expected a data row, got a blank line")
        fields = labels.split_fields(line, ";")
        if fields and fields[-1] == "" and len(fields) == len(names) + 1:
            fields = fields[:-1]  # a trailing ';'
        if len(fields) != len(names):
            raise errors.UserError(
                f"{path}, line {lineno}: expected {len(names)} ';'-separated values "
                f"(time + {len(raters)} raters), got {len(fields)}")
        times.append(labels.parse_float(fields[0], path, lineno, "time"))
        rows.append([labels.parse_float(f, path, lineno, f"rater {r}")
                     for f, r in zip(fields[1:], raters)])
        linenos.append(lineno)
    if not rows:
        raise errors.UserError(f"{path}: expected data rows after the header, found none")
    times = np.asarray(times, np.float64)
    labels.check_increasing(times, linenos, path, "time")
    table = np.asarray(rows, np.float64)
    finite = np.isfinite(table)
    count = finite.sum(axis=1)
    mean = np.where(count > 0, np.where(finite, table, 0.0).sum(axis=1) / np.maximum(count, 1),
                    np.nan)
    return times, mean, {r: table[:, j] for j, r in enumerate(raters)}


def read_recola(arousal_path, valence_path) -> labels.LabelTrack:
    """The arousal and valence files of one RECOLA recording, ARFF or original CSV."""
    def one(path):
        if str(path).lower().endswith(".arff"):
            times, values = read_recola_arff(path)
            return times, values, {}
        return read_recola_csv(path)

    t_a, v_a, r_a = one(arousal_path)
    t_v, v_v, r_v = one(valence_path)
    raters = {k: r for k, r in (("arousal", r_a), ("valence", r_v)) if r}
    return labels.combine_dims((t_a, v_a), (t_v, v_v), source=str(arousal_path), raters=raters)


def read_affwild2(path) -> labels.LabelTrack:
    """An Aff-Wild2 VA file: header `valence,arousal`, line i = frame i, -5 = unlabelled."""
    lines = labels.read_lines(path)
    head_no, head = lines[0]
    if [f.lower() for f in labels.split_fields(head, ",")] != ["valence", "arousal"]:
        raise errors.UserError(
            f"{path}, line {head_no}: expected header 'valence,arousal', got {head.strip()!r}")
    val, aro = [], []
    for lineno, line in lines[1:]:
        fields = labels.split_fields(line, ",")
        if len(fields) != 2:
            raise errors.UserError(
                f"{path}, line {lineno}: expected 'valence,arousal' (2 values), got "
                f"{line.strip()!r}")
        pair = [labels.parse_float(f, path, lineno, d) for f, d in zip(fields, ("valence",
                                                                               "arousal"))]
        for x, d in zip(pair, ("valence", "arousal")):
            if np.isfinite(x) and x != AFFWILD2_UNLABELLED and not -1.0 <= x <= 1.0:
                raise errors.UserError(
                    f"{path}, line {lineno}: expected {d} in [-1, 1] or -5 (unlabelled), "
                    f"got {x:g}")
        val.append(np.nan if pair[0] == AFFWILD2_UNLABELLED else pair[0])
        aro.append(np.nan if pair[1] == AFFWILD2_UNLABELLED else pair[1])
    return labels.make_track(val, aro, str(path), frames=np.arange(len(val)))


def read_sewa(path) -> labels.LabelTrack:
    """A SEWA label CSV: `instance_name;timestamp;arousal;valence;liking`, no header."""
    times, val, aro, linenos = [], [], [], []
    for lineno, line in labels.read_lines(path):
        if not line.strip():
            raise errors.UserError(f"{path}, line {lineno}: expected a data row, got a blank line")
        fields = labels.split_fields(line, ";")
        if len(fields) not in (4, 5):
            raise errors.UserError(
                f"{path}, line {lineno}: expected 'instance_name;timestamp;arousal;valence;"
                f"liking' (5 ';'-separated values), got {len(fields)}")
        times.append(labels.parse_float(fields[1], path, lineno, "timestamp"))
        aro.append(labels.parse_float(fields[2], path, lineno, "arousal"))
        val.append(labels.parse_float(fields[3], path, lineno, "valence"))
        linenos.append(lineno)
    times = np.asarray(times, np.float64)
    labels.check_increasing(times, linenos, path, "timestamp")
    return labels.make_track(val, aro, str(path), times_s=times)


_FRAME_NAMES = ("frame", "frame_index", "frame_id")
_GENERIC_TIME_NAMES = ("time", "timestamp", "time_s", "seconds")


def _generic_header(head: str):
    """(delimiter, lower-case column names, frame column, time column) of a header line;
    None when it lacks `frame`/`time`, `valence` or `arousal`."""
    delim = ";" if head.count(";") > head.count(",") else ","
    if "\t" in head and head.count("\t") > head.count(delim):
        delim = "\t"
    names = [n.lower() for n in labels.split_fields(head, delim)]
    frame_col = next((names.index(n) for n in _FRAME_NAMES if n in names), None)
    time_col = next((names.index(n) for n in _GENERIC_TIME_NAMES if n in names), None)
    if (frame_col is None and time_col is None) or "valence" not in names \
            or "arousal" not in names:
        return None
    return delim, names, frame_col, time_col


def read_generic_csv(path) -> labels.LabelTrack:
    """A CSV with `frame` or `time`, `valence`, `arousal` columns (any order, extra ignored).

    The header may be written as a comment, `# time,arousal,valence`, as
    `numpy.savetxt(..., header=..., delimiter=",")` writes it: lines starting with `#` are
    comments, and the last comment line naming the columns is the header when the first other
    line does not.
    """
    lines = labels.read_lines(path)
    comments = [(n, ln.strip()[1:]) for n, ln in lines if ln.strip().startswith("#")]
    rows = [(n, ln) for n, ln in lines if not ln.strip().startswith("#")]
    header = _generic_header(rows[0][1]) if rows else None
    if header is not None:
        rows = rows[1:]
    else:
        header = next((h for h in (_generic_header(text) for _, text in reversed(comments))
                       if h is not None), None)
    if header is None:
        first_no, first = lines[0]
        raise errors.UserError(
            f"{path}, line {first_no}: expected a header with 'frame' or 'time', 'valence' and "
            f"'arousal' columns (or such a '# ...' comment line), got {first.strip()!r}")
    delim, names, frame_col, time_col = header
    if not rows:
        raise errors.UserError(f"{path}: expected data rows after the header, found none")
    key_col = frame_col if frame_col is not None else time_col
    v_col, a_col = names.index("valence"), names.index("arousal")
    keys, val, aro, linenos = [], [], [], []
    for lineno, line in rows:
        if not line.strip():
            raise errors.UserError(f"{path}, line {lineno}: expected a data row, got a blank line")
        fields = labels.split_fields(line, delim)
        if len(fields) != len(names):
            raise errors.UserError(
                f"{path}, line {lineno}: expected {len(names)} values like the header, got "
                f"{len(fields)}")
        key = labels.parse_float(fields[key_col], path, lineno, names[key_col])
        if frame_col is not None and not (np.isfinite(key) and key >= 0 and key == int(key)):
            raise errors.UserError(
                f"{path}, line {lineno}: expected a frame index (integer >= 0), got "
                f"{fields[key_col]!r}")
        if not np.isfinite(key):
            raise errors.UserError(
                f"{path}, line {lineno}: expected a time in seconds, got {fields[key_col]!r}")
        keys.append(key)
        val.append(labels.parse_float(fields[v_col], path, lineno, "valence"))
        aro.append(labels.parse_float(fields[a_col], path, lineno, "arousal"))
        linenos.append(lineno)
    keys = np.asarray(keys, np.float64)
    labels.check_increasing(keys, linenos, path, names[key_col])
    if frame_col is not None:
        return labels.make_track(val, aro, str(path), frames=keys.astype(np.int64))
    return labels.make_track(val, aro, str(path), times_s=keys)
