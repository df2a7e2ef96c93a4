"""Finding the (video, labels) pairs of a data set on disk, one `Item` per record to write.

`find_items(dataset, root, splits=None)` walks `root` (any depth) and pairs videos with label
files by name; `read_labels(item)` reads an item's labels into a `labels.LabelTrack`. Record
splits are always train / dev / test (`devel`, `val`, `Validation_Set`, ... -> dev), or `all`
where the layout does not tell. Video files: `faces.video.VIDEO_EXTENSIONS` (.avi .mp4 .mov
.mkv ... in any case); hidden files are skipped. Items that cannot be processed (labels
without a video, a missing dimension) are still returned, with `problem` set, so the manifest
lists them as failed. Each data set is one row of `LAYOUTS` (its finder and label reader).

AVEC 2012 layout (`avec2012`; the synthetic-video generator writes exactly this):

    ROOT/
      train/videos/train001.avi ...
      train/FC_train_labels/labels_continuous_train001_{arousal,valence,expectancy,power}.dat
      devel/videos/devel001.avi ...
      devel/FC_devel_labels/labels_continuous_devel001_{arousal,valence,...}.dat
      test/videos/test001.avi ...
      test/FC_test_labels/labels_continuous_test001_{arousal,valence,...}.dat   (optional)

  Only file names matter: a label file is any `labels_continuous_{split}{NNN}_{dim}.dat`
  (split train|devel|test, NNN three digits, dim arousal|expectancy|power|valence; no header,
  one float per line, line i = frame i at 49.979 fps); a video is any video file whose stem
  contains `{split}{NNN}`, also with words between them as in the release's
  `train_video001.avi` / `devel_video001.avi` (`{split}_{NNN}`, `{split}-video-{NNN}`; not
  preceded by a letter, not followed by a digit). The release names test videos `tests_`
  (`tests_video001.avi`) while their labels say `test` (`labels_continuous_test001_...`):
  `tests` is the test split. They pair by (split, NNN); id `avec2012/{split}{NNN}` with the
  labels' split word, e.g. `avec2012/devel003` (record split `dev`), `avec2012/test001`;
  subject = `{split}{NNN}`. A video without label files is kept unlabelled; labels without a
  video, or only one of arousal/valence, become failed items; two videos for one session raise
  UserError.

RECOLA (`recola`): `recordings_video/{train,dev,test}_{N}.mp4` with
`ratings_gold_standard/{arousal,valence}/{stem}.arff`, or the original release's per-rater
`{arousal,valence}/{stem}.csv` (any folder named `arousal` / `valence`). Per dimension the
rating is chosen by folder name, never by walk order: the ARFF under `ratings_gold_standard/`,
else the only ARFF, else the only CSV; a same-named ARFF elsewhere
(`ratings_individual/arousal/train_1.arff`) is ignored with a warning, and two candidates of
one rank make the item failed. Aff-Wild2 (`affwild2`): every `*.txt` label file is an item,
its video is the video file with the same stem once `_left` / `_right` is dropped (the side
picks the face); split from the label folder (`Train_Set`, `Validation_Set`, `Test_Set`,
train, val, dev, test). A video found in several folders (the older release's AU_Set /
EXPR_Set / VA_Set or batch1 / batch2 copies) is one video: the copy under a `VA*` folder, else
the first path in sorted order, is used and the choice logged. SEWA (`sewa`):
`labels/{Train,Devel,Test}_NN.csv` + a video with the same stem anywhere. Generic (`csv`): a
video and a same-stem `.csv` in one folder (its header may be a `# ` comment line, as
`numpy.savetxt` writes it); split from the nearest train/dev/val/test folder.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import pathlib
import re
from typing import Callable, Dict, Iterable, List, Optional

from absl import logging

from ast_net import errors
from ast_net.data import labels, labels_readers
from ast_net.faces import video as video_lib

# DATASETS (the names `--dataset` accepts) is the key list of LAYOUTS, the table at the end of
# this file: a new data set is one finder function, one label reader and one row there.
SPLITS = ("train", "dev", "test", "all")

_SPLIT_WORDS = {
    "train": "train", "training": "train", "train_set": "train", "trainset": "train",
    "dev": "dev", "devel": "dev", "development": "dev", "val": "dev", "valid": "dev",
    "validation": "dev", "validation_set": "dev", "dev_set": "dev",
    "test": "test", "tests": "test", "testing": "test", "test_set": "test", "testset": "test",
}


@dataclasses.dataclass(frozen=True)
class Item:
    """One record source: a video, its label files and where it belongs.

    label_paths: {"arousal": path, "valence": path} for per-dimension formats, {"va": path}
    for files holding both; empty for an unlabelled video. face: "left" / "right" for
    Aff-Wild2 two-person label files, else "". problem: why the item cannot be processed.
    """

    dataset: str
    video_id: str
    split: str
    subject: str
    video_path: Optional[str]
    label_paths: Dict[str, str]
    label_format: str = ""
    face: str = ""
    problem: str = ""


def split_name(word: str) -> Optional[str]:
    """Maps a split word (train, devel, Validation_Set, ...) to train/dev/test, else None."""
    return _SPLIT_WORDS.get(word.strip().lower())


def _walk(root: pathlib.Path) -> List[pathlib.Path]:
    out, seen = [], set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # A symlink loop: do not walk a folder twice.
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        # Hidden files are skipped too: a writer's temporary file (`ast_net.atomic`), macOS `._*`.
        out.extend(pathlib.Path(dirpath) / f for f in sorted(filenames) if not f.startswith("."))
    return out


def _videos(files: Iterable[pathlib.Path]) -> List[pathlib.Path]:
    return [f for f in files if f.suffix.lower() in video_lib.VIDEO_EXTENSIONS]


def _by_stem(videos: List[pathlib.Path], root) -> Dict[str, pathlib.Path]:
    """Video per lower-case stem; two videos with one stem raise UserError."""
    out: Dict[str, pathlib.Path] = {}
    for v in videos:
        key = v.stem.lower()
        if key in out:
            raise errors.UserError(
                f"{root}: expected one video per name, found two for {v.stem!r}: {out[key]} and "
                f"{v}")
        out[key] = v
    return out


def find_items(dataset: str, root, splits: Optional[Iterable[str]] = None) -> List[Item]:
    """All items of a data set layout under `root`, sorted by (split, video_id).

    Args:
      dataset: one of DATASETS.
      root: the data set folder (a leading `~` is expanded).
      splits: keep only these record splits (train/dev/test/all; `devel` etc. accepted).
    Raises:
      UserError: unknown data set, missing root, ambiguous names, or no items at all.
    """
    if dataset not in DATASETS:
        raise errors.UserError(f"--dataset: expected one of {', '.join(DATASETS)}, got "
                               f"{dataset!r}")
    root = pathlib.Path(root).expanduser()
    if not root.is_dir():
        raise errors.UserError(f"{root}: expected the {dataset} data set folder, it does not "
                               f"exist or is not a folder")
    items = LAYOUTS[dataset].find(root, _walk(root))
    if splits:
        wanted = set()
        for s in splits:
            name = "all" if s.strip().lower() == "all" else split_name(s)
            if name is None:
                raise errors.UserError(f"--splits: expected names among train, dev, test, all; "
                                       f"got {s!r}")
            wanted.add(name)
        items = [it for it in items if it.split in wanted]
    ids = collections.Counter(it.video_id for it in items)
    twice = sorted(i for i, n in ids.items() if n > 1)
    if twice:
        raise errors.UserError(f"{root}: expected unique video names, found {twice[0]!r} "
                               f"{ids[twice[0]]} times")
    if not items:
        raise errors.UserError(
            f"{root}: found no {dataset} videos or label files"
            f"{' in splits ' + ','.join(splits) if splits else ''}; see docs/datasets.md "
            f"for the expected layout")
    return sorted(items, key=lambda it: (it.split, it.video_id, it.face))


_AVEC_LABEL = re.compile(
    r"^labels_continuous_(train|devel|tests?)(\d{3})_(arousal|expectancy|power|valence)\.dat$",
    re.IGNORECASE)
# The split word, any `_word` / `-word` between it and the session number (`train_video001`),
# then three digits; `tests` is the release's video prefix of the test split.
_AVEC_VIDEO = re.compile(r"(?<![a-z])(train|devel|tests?)(?:[_-][a-z]+)*[_-]?(\d{3})(?!\d)",
                         re.IGNORECASE)
_AVEC_SPLIT_WORD = {"train": "train", "devel": "devel", "test": "test", "tests": "test"}


def _avec2012(root, files) -> List[Item]:
    labels_by: Dict[tuple, Dict[str, str]] = collections.defaultdict(dict)
    for f in files:
        m = _AVEC_LABEL.match(f.name)
        if m:
            key = (_AVEC_SPLIT_WORD[m.group(1).lower()], m.group(2))
            labels_by[key][m.group(3).lower()] = str(f)
    videos: Dict[tuple, pathlib.Path] = {}
    for v in _videos(files):
        m = _AVEC_VIDEO.search(v.stem)
        if not m:
            continue
        key = (_AVEC_SPLIT_WORD[m.group(1).lower()], m.group(2))
        if key in videos:
            raise errors.UserError(
                f"{root}: expected one video per session, found two for {key[0]}{key[1]}: "
                f"{videos[key]} and {v}")
        videos[key] = v
    items = []
    for key in sorted(set(labels_by) | set(videos)):
        session = key[0] + key[1]
        dims = labels_by.get(key, {})
        paths = {d: dims[d] for d in ("arousal", "valence") if d in dims}
        problem = ""
        if key not in videos:
            problem = f"no video file found for session {session} (labels {sorted(dims)})"
        elif dims and len(paths) < 2:
            missing = "valence" if "arousal" in paths else "arousal" if "valence" in paths \
                else "arousal and valence"
            problem = f"no {missing} label file for session {session}"
        items.append(Item("avec2012", f"avec2012/{session}", split_name(key[0]), session,
                          str(videos[key]) if key in videos else None,
                          paths if len(paths) == 2 else {}, "avec2012", "", problem))
    return items


def _split_from_prefix(stem: str) -> str:
    head = re.split(r"[_\-]", stem, maxsplit=1)[0]
    return split_name(head) or "all"


def _split_from_parents(path: pathlib.Path, root: pathlib.Path) -> str:
    for parent in path.relative_to(root).parents:
        if parent.name and split_name(parent.name):
            return split_name(parent.name)
    return "all"


_GOLD_FOLDER = "ratings_gold_standard"


def _recola(root, files) -> List[Item]:
    found: Dict[str, Dict[str, List[pathlib.Path]]] = collections.defaultdict(
        lambda: collections.defaultdict(list))
    for f in files:
        dim = f.parent.name.lower()
        if dim in ("arousal", "valence") and f.suffix.lower() in (".arff", ".csv"):
            found[f.stem.lower()][dim].append(f)
    videos = _by_stem(_videos(files), root)
    items = []
    for stem in sorted(set(found) | set(videos)):
        dims = found.get(stem, {})
        name = videos[stem].stem if stem in videos else next(iter(dims.values()))[0].stem
        paths, problems = {}, []
        for d in ("arousal", "valence"):
            if d in dims:
                chosen, problem = _recola_rating(root, dims[d], d, name)
                if chosen:
                    paths[d] = chosen
                else:
                    problems.append(problem)
        if stem not in videos:
            problems.insert(0, f"no video file found for {name} (ratings {sorted(dims)})")
        elif dims and not problems and len(paths) < 2:
            problems.append(f"no {'valence' if 'arousal' in paths else 'arousal'} rating for "
                            f"{name}")
        items.append(Item("recola", f"recola/{name}", _split_from_prefix(name), name,
                          str(videos[stem]) if stem in videos else None,
                          paths if len(paths) == 2 else {}, "recola", "", "; ".join(problems)))
    return items


def _recola_rating(root, paths: List[pathlib.Path], dim: str, name: str):
    """The one rating file of a dimension, chosen by folder name, never by walk order:
    an ARFF under `ratings_gold_standard/`, else the only ARFF, else the only CSV.

    Returns (path, "") or ("", why none could be chosen). Other ARFF files of the same name
    (`ratings_individual/arousal/train_1.arff`) are logged as ignored.
    """
    arff = sorted(p for p in paths if p.suffix.lower() == ".arff")
    gold = [p for p in arff
            if _GOLD_FOLDER in (q.lower() for q in p.relative_to(root).parts[:-1])]
    csvs = sorted(p for p in paths if p.suffix.lower() == ".csv")
    for group, what in ((gold, f"ARFF under {_GOLD_FOLDER}/"), (arff, "ARFF"), (csvs, "CSV")):
        if len(group) > 1:
            return "", (f"{len(group)} {dim} {what} files for {name}, expected one: "
                        f"{', '.join(str(p) for p in group)}")
        if group:
            chosen = group[0]
            break
    for p in arff:
        if p != chosen:
            logging.warning("recola: ignoring %s: the %s gold standard of %s is %s", p, dim,
                            name, chosen)
    return str(chosen), ""


def _affwild2_videos(root, files) -> Dict[str, pathlib.Path]:
    """Video per lower-case stem. The older release holds some videos in several folders
    (AU_Set / EXPR_Set / VA_Set, batch1 / batch2): one video, the copy under a VA folder
    preferred, then the first path in sorted order; the choice is logged."""
    copies: Dict[str, List[pathlib.Path]] = collections.defaultdict(list)
    for v in _videos(files):
        copies[v.stem.lower()].append(v)

    def preference(path: pathlib.Path):
        rel = path.relative_to(root)
        in_va = any(q.lower() == "va" or q.lower().startswith("va_") for q in rel.parts[:-1])
        return (not in_va, rel.as_posix())

    out = {}
    for key, paths in copies.items():
        paths = sorted(paths, key=preference)
        out[key] = paths[0]
        if len(paths) > 1:
            logging.info("affwild2: video %s is in %d folders; using %s, not %s", paths[0].stem,
                         len(paths), paths[0], ", ".join(str(p) for p in paths[1:]))
    return out


def _affwild2(root, files) -> List[Item]:
    videos = _affwild2_videos(root, files)
    items = []
    for f in files:
        if f.suffix.lower() != ".txt" or not _is_affwild2_file(f):
            continue
        stem, face = f.stem, ""
        for side in ("left", "right"):
            if stem.lower().endswith("_" + side):
                stem, face = stem[:-len(side) - 1], side
        video = videos.get(stem.lower())
        problem = "" if video else f"no video file found for {f.name} (expected {stem}.mp4/.avi)"
        items.append(Item("affwild2", f"affwild2/{f.stem}", _split_from_parents(f, root), f.stem,
                          str(video) if video else None, {"va": str(f)}, "affwild2", face,
                          problem))
    return items


def _is_affwild2_file(path: pathlib.Path) -> bool:
    """True when the file starts with the `valence,arousal` header (skips READMEs, lists)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64).decode("utf-8-sig", errors="replace")
    except OSError:
        return False
    first = head.splitlines()[0] if head else ""
    return first.replace(" ", "").replace('"', "").lower() == "valence,arousal"


def _sewa(root, files) -> List[Item]:
    videos = _by_stem(_videos(files), root)
    items = []
    for f in files:
        if f.suffix.lower() != ".csv" or f.parent.name.lower() != "labels":
            continue
        video = videos.get(f.stem.lower())
        problem = "" if video else f"no video file found for {f.name}"
        items.append(Item("sewa", f"sewa/{f.stem}", _split_from_prefix(f.stem), f.stem,
                          str(video) if video else None, {"va": str(f)}, "sewa", "", problem))
    return items


def _generic(root, files) -> List[Item]:
    items = []
    for v in _videos(files):
        csv_path = v.with_suffix(".csv")
        if not csv_path.exists():
            csv_path = next((f for f in v.parent.iterdir()
                             if f.suffix.lower() == ".csv" and f.stem == v.stem), None)
        rel = v.relative_to(root).with_suffix("").as_posix()
        items.append(Item("csv", f"csv/{rel}", _split_from_parents(v, root), v.stem, str(v),
                          {"va": str(csv_path)} if csv_path else {}, "csv"))
    return items


def read_labels(item: Item) -> Optional[labels.LabelTrack]:
    """The item's labels as a LabelTrack, or None for an unlabelled item."""
    if not item.label_paths:
        return None
    if item.label_format not in LAYOUTS:
        raise ValueError(f"unknown label format {item.label_format!r}")
    return LAYOUTS[item.label_format].read(item.label_paths)


@dataclasses.dataclass(frozen=True)
class Layout:
    """How one data set is found on disk and how its labels are read.

    find(root, files) -> items: `files` are every (non-hidden) file under `root`, sorted.
    read(label_paths) -> LabelTrack: `label_paths` of one of its items (`Item.label_paths`).
    """

    find: Callable[[pathlib.Path, List[pathlib.Path]], List[Item]]
    read: Callable[[Dict[str, str]], labels.LabelTrack]


def _per_dimension(reader):
    return lambda p: reader(p["arousal"], p["valence"])


def _one_file(reader):
    return lambda p: reader(p["va"])


# The one data-set dispatch: `--dataset` name (also each item's `label_format`) -> Layout.
LAYOUTS: Dict[str, Layout] = {
    "avec2012": Layout(_avec2012, _per_dimension(labels_readers.read_avec2012)),
    "recola": Layout(_recola, _per_dimension(labels_readers.read_recola)),
    "affwild2": Layout(_affwild2, _one_file(labels_readers.read_affwild2)),
    "sewa": Layout(_sewa, _one_file(labels_readers.read_sewa)),
    "csv": Layout(_generic, _one_file(labels_readers.read_generic_csv)),
}
DATASETS = tuple(LAYOUTS)
