"""FER2013 (Kaggle / ICML 2013 facial expression challenge) as a TensorFlow Datasets builder.

`from ast_net.data import fer2013` registers the TFDS dataset `fer2013` (the builder lives in
`fer2013_dataset_builder.py`, where TFDS looks for it) and gives `fer2013.load(...)`, which
prepares the dataset from a manual directory holding `fer2013.csv` and returns tf.data splits.
"""

from ast_net.data.fer2013.fer2013_dataset_builder import (  # noqa: F401
    CSV_NAME,
    LABELS,
    SPLITS,
    Builder,
    load,
    write_synthetic_csv,
)
