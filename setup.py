"""Installs osas: one-shot neural architecture search on JAX/Flax."""

import setuptools

# Compatible ranges, so osas installs next to other packages; constraints.txt pins the exact
# versions CI tests: pip install -e '.[test]' -c constraints.txt
setuptools.setup(
    name='osas',
    version='0.1.0',
    description='One-shot architecture search (Bender et al., ICML 2018) on JAX/Flax.',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=setuptools.find_packages(include=['osas', 'osas.*']),
    python_requires='>=3.11',  # jax, jaxlib, flax and orbax-checkpoint 0.12 need it.
    install_requires=[
        'absl-py>=2.5.1,<3',
        'clu>=0.0.12,<0.1',
        'etils[epath]>=1.15,<2',
        'flax>=0.12.8,<0.13',
        'grain>=0.2.18,<0.3',
        'jax>=0.10.2,<0.11',
        'matplotlib>=3.8,<4',
        'ml-collections>=1.1,<2',
        'numpy>=2.0,<3',
        'optax>=0.2.8,<0.3',
        'orbax-checkpoint>=0.12.8,<0.13',
        'Pillow>=10',
        'scikit-learn>=1.4,<2',
        'scipy>=1.14,<2',
        'tensorboardX>=2.6,<3',
        'tensorflow-datasets>=4.9.10,<5',
    ],
    extras_require={
        # TensorBoard's own readers check our event files; the style check runs ruff and pyink,
        # whose output changes between releases: constraints.txt pins them.
        # pytest-xdist: the suite runs on every core (pytest.ini).
        'test': [
            'pytest>=8',
            'pytest-xdist>=3.5',
            'tensorboard>=2.16',
            'pyink>=26.5,<27',
            'ruff>=0.17,<0.18',
        ],
        # clu's metric_writers and periodic_actions, and tfds.load, need TensorFlow.
        'tf': ['tensorflow-cpu', 'tensorboard'],
        # gs:// workdirs and data without TensorFlow: etils.epath reads and writes them through
        # gcsfs, tensorboardX writes event files there through google-cloud-storage.
        'gcs': ['etils[epath-gcs]', 'google-cloud-storage'],
    },
)
