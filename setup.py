"""Installs osas: one-shot neural architecture search on JAX/Flax."""

import setuptools

setuptools.setup(
    name='osas',
    version='0.1.0',
    description='One-shot architecture search (Bender et al., ICML 2018) on JAX/Flax.',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=setuptools.find_packages(include=['osas', 'osas.*']),
    python_requires='>=3.10',
    install_requires=[
        'jax==0.10.2',
        'jaxlib==0.10.2',
        'flax==0.12.8',
        'optax==0.2.8',
        'orbax-checkpoint==0.12.8',
        'clu==0.0.12',
        'ml-collections==1.1.0',
        'absl-py==2.5.1',
        'tensorflow-datasets==4.9.10',
        'grain==0.2.18',
        'numpy',
        'scipy',
        'matplotlib',
        'scikit-learn',
    ],
    extras_require={
        'test': ['pytest', 'tensorboard'],  # TensorBoard reads our logs in a test.
        # clu's metric_writers and periodic_actions, and tfds.load, need TensorFlow.
        'tf': ['tensorflow-cpu', 'tensorboard'],
        # gs:// workdirs and data without TensorFlow: etils.epath reads them through gcsfs.
        'gcs': ['gcsfs'],
    },
)
