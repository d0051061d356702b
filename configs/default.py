"""The paper's CIFAR-10 recipe (Bender et al. 2018): the base every other config edits."""

import ml_collections

BENDER2018_OPS = ('identity', 'sep3x3', 'sep5x5', 'sep7x7', 'conv1x7_7x1', 'max_pool', 'avg_pool')
NB201_OPS = ('none', 'skip_connect', 'nor_conv_1x1', 'nor_conv_3x3', 'avg_pool_3x3')


def get_config(arg=None):
  del arg  # The base takes no argument; variants do.
  config = ml_collections.ConfigDict()
  config.seed = 0  # Seeds data order, initialisation, masks and candidate sampling.
  config.stages = ('train_supernet', 'search', 'retrain', 'report')  # In this order.
  config.num_devices = ml_collections.config_dict.placeholder(int)  # None: all devices.
  config.distributed = False  # Call jax.distributed.initialize() (multi-host without env).
  config.distributed_timeout_s = 300  # Bounded wait for the other processes to join.
  # Where the run writes; --workdir overrides it. None: ./workdirs/NAME[_ARG] for
  # --config=configs/NAME.py[:ARG].
  config.workdir = ml_collections.config_dict.placeholder(str)
  # JAX's persistent compilation cache: a rerun (another seed, a resumed stage) loads the
  # programs an earlier run compiled instead of compiling them again. '': off.
  config.compilation_cache_dir = '~/.cache/osas/xla'

  config.space = ml_collections.ConfigDict()
  config.space.name = 'bender2018'  # A registered space (osas.space.get_space), built ...
  config.space.bender2018 = ml_collections.ConfigDict()  # ... from its section; others unread.
  config.space.bender2018.num_blocks = 4  # N_choice: choice blocks per cell.
  config.space.bender2018.num_cell_inputs = 2  # Blocks may read the two previous cells.
  config.space.bender2018.ops = BENDER2018_OPS  # Candidate ops of every block.
  config.space.bender2018.min_ops = 1  # Ops per block: at least ...
  config.space.bender2018.max_ops = 2  # ... and at most.
  config.space.nasbench201 = ml_collections.ConfigDict()  # NAS-Bench-201 (Dong & Yang 2020).
  config.space.nasbench201.num_nodes = 4  # Node 0 the cell's input, the last its output.
  config.space.nasbench201.ops = NB201_OPS  # One of these on every edge.

  config.data = ml_collections.ConfigDict()
  config.data.source = 'tfds'  # 'digits' | 'npz' | 'tfds'.
  config.data.name = 'cifar10'  # TFDS dataset name.
  config.data.npz_dir = ml_collections.config_dict.placeholder(str)  # For source 'npz'.
  config.data.tfds_data_dir = ml_collections.config_dict.placeholder(str)  # TFDS data_dir.
  config.data.train_split = 'train[:45000]'  # The paper's 45,000 / 5,000 / 10,000 split.
  config.data.valid_split = 'train[45000:]'  # Held out: one-shot scores are measured here.
  config.data.test_split = 'test'  # Stand-alone test accuracy.
  config.data.augmentation = 'cifar'  # 'none' | 'cifar' | 'imagenet'.
  config.data.image_size = ml_collections.config_dict.placeholder(int)  # 'imagenet' crop.
  config.data.workers = 0  # Threads prefetching batches.

  config.model = ml_collections.ConfigDict()
  config.model.filters = 16  # F: filters of the first stack; doubled at each reduction.
  config.model.num_stacks = 3  # Stacks of cells with a reduction between them.
  config.model.cells_per_stack = 2  # 3 x 2 = the paper's 6 cells for CIFAR-10.
  config.model.stem = 'cifar'  # 'cifar' (3x3 conv) | 'imagenet' (two stride-2 convs).
  # Convs and pools: 'cpu' forms XLA:CPU runs fast, 'native' XLA's (GPU, TPU); 'auto' picks.
  config.model.kernels = 'auto'
  # 'bfloat16': mixed precision for GPUs and TPUs (float32 params, BN statistics, logits).
  config.model.dtype = 'float32'

  config.supernet = ml_collections.ConfigDict()
  config.supernet.sampler = 'path_dropout'  # Training-time masks (osas.samplers).
  config.supernet.num_steps = 10_000  # SGD steps.
  config.supernet.batch_size = 1024  # Global batch, all devices together.
  config.supernet.ghost_batch_size = 32  # Examples per ghost batch: own BN stats, own mask.
  config.supernet.eval_batch_size = 1024  # Probe evaluation batch (ghost BN too).
  config.supernet.learning_rate = 0.1  # Peak rate at lr_reference_batch_size ...
  config.supernet.lr_reference_batch_size = 1024  # ... scaled linearly with batch_size.
  config.supernet.lr_schedule = 'cosine'  # 'cosine' | 'linear' | 'constant'.
  config.supernet.warmup_steps = 0  # Linear warm-up before the decay.
  config.supernet.momentum = 0.9  # SGD momentum ...
  config.supernet.nesterov = True  # ... Nesterov's, as in the paper.
  config.supernet.path_dropout_rate = 0.1  # r: a node loses all k paths with prob. r.
  config.supernet.weight_decay = 1e-4  # L2, in proportion to the ghosts using a weight.
  config.supernet.bn_affine = True  # False: ghost BN keeps scale 1 and shift 0 (untrained).
  # 'skip': ghost batches one after another, each computing only the paths its mask
  # keeps; 'mask': all at once, paths multiplied by 0/1; 'auto': skip on CPU with a
  # single-path sampler (4x faster on nasbench201), else mask.
  config.supernet.execution = 'auto'
  config.supernet.ema_decay = 0.0  # Search with a moving average of the weights; 0: off.
  config.supernet.checkpoint_every = 1000  # Steps between checkpoints (and at the end).
  config.supernet.keep_checkpoints = 3  # The newest kept; more for a curve over steps.
  config.supernet.log_every = 100  # Steps between logged training metrics.
  config.supernet.eval_every = 1000  # Steps between probe evaluations (and at the end).
  config.supernet.num_probes = 4  # Random archs watched while training (plus all-on).
  # 'shared': one set of weights for every cell (the paper's); 'hypernet': SMASH's
  # (Brock et al. 2018), convolution kernels generated from each cell's encoding.
  config.supernet.weights = 'shared'

  # SMASH's hypernetwork, for config.supernet.weights = 'hypernet' (osas.models.hypernet).
  config.hypernet = ml_collections.ConfigDict()
  config.hypernet.width = 16  # Embedding units: the rank of each kernel's generated part.
  config.hypernet.scale = 1.0  # Generated part's initial size, in He standard deviations.
  config.hypernet.kernels = 'dense'  # Every dense conv kernel; 'pointwise': 1x1s (SMASH's).

  # ENAS's controller (Pham et al. 2018), for config.supernet.sampler = 'controller' and
  # config.search.strategy = 'controller'; defaults from ENAS's convolutional cell search.
  config.controller = ml_collections.ConfigDict()
  config.controller.hidden_size = 64  # LSTM units.
  config.controller.num_layers = 1  # Stacked LSTM layers.
  config.controller.temperature = 1.0  # Logits divided by this (1: as ENAS's cells), ...
  config.controller.tanh_constant = 1.1  # ... then squashed to c * tanh(logits); 0: not; ...
  config.controller.op_tanh_reduce = 2.5  # ... c / op_tanh_reduce for a choice of ops.
  config.controller.learning_rate = 0.0035  # Adam's.
  config.controller.entropy_weight = 1e-4  # The policy's entropy, weighted, adds to a reward.
  config.controller.baseline_decay = 0.99  # The reward's moving-average baseline.
  config.controller.shared_steps = 100  # Shared-weight steps per phase (ENAS: an epoch).
  config.controller.train_steps = 30  # Controller steps per phase, alternating.
  config.controller.num_samples = 10  # Cells per controller step, their gradients averaged.
  config.controller.batch_size = 256  # Validation images rewarding each cell (ghost BN).

  config.search = ml_collections.ConfigDict()
  # 'random' | 'all' (every cell: at most num_candidates) | 'evolution' (SPOS's) |
  # 'controller' (cells from the trained ENAS controller: supernet.sampler='controller').
  config.search.strategy = 'random'
  # Strategy 'controller': 'most_probable' (beam search, most probable first) or 'sampled'.
  config.search.controller_draw = 'most_probable'
  config.search.num_candidates = 20_000  # K, distinct cells of 'random' (the paper: 20,000).
  # Every strategy proposes only cells whose stand-alone model at config.retrain.filters
  # (osas.models.cost) has at most this many parameters / FLOPs (multiply-adds); 0: no limit.
  config.search.max_params = 0
  config.search.max_flops = 0
  # Strategy 'evolution': Single Path One-Shot's search (Guo et al. 2020) and its defaults.
  config.search.evolution = ml_collections.ConfigDict()
  config.search.evolution.population = 50  # Cells per generation, the first drawn at random.
  config.search.evolution.iterations = 20  # Generations scored: population x iterations cells.
  config.search.evolution.top_k = 10  # Parents: the best top_k of all cells scored so far.
  config.search.evolution.mutation_prob = 0.1  # A mutant redraws each gene with this chance.
  config.search.evolution.crossover = 0.5  # Share of a generation from crossover; rest mutation.
  config.search.evaluator = 'auto'  # 'vmap' | 'skip' | 'auto' (the faster on the platform).
  config.search.chunk_size = 0  # M: candidates per compiled call, all devices; 0: what fits.
  config.search.batch_size = 1024  # Validation images per call, in ghost batches.
  config.search.num_batches = 0  # Validation batches per candidate; 0: the whole split.
  config.search.kl_examples = 64  # Training images for the label-free KL score; 0: off.
  config.search.checkpoint_step = 0  # One-shot weights: 0 the newest; N at or before N.
  # Batch norm of the one-shot scores: 'ghost' (each held-out ghost batch's statistics, as
  # in training: the paper) or 'recalibrate' (each candidate's statistics on training
  # images first, then fixed: Single Path One-Shot's).
  config.search.bn = 'ghost'
  # A multiple of batch_size. SPOS used 20,000 ImageNet images; 1,024 CIFAR images give
  # each channel's mean over a million pixels, at the cost of scoring 1,024 images.
  config.search.recalibration_images = 1024
  # Score one cell per isomorphism class and copy its scores to the class (nasbench201).
  config.search.per_class = False
  # Zero-cost scores of each candidate on a freshly initialised supernet, from names in
  # osas.search.zero_cost.SCORES (synflow, naswot, jacob_cov, snip, grad_norm, meco); (): none.
  config.search.zero_cost = ()
  config.search.zero_cost_batch_size = 64  # Training images they are computed from.
  # What selection ranks by (osas.search.ranking): a score ('accuracy', 'loss', 'kl', a
  # zero-cost name, 'params', 'flops') or a mean of ranks, 'naswot+synflow:2+flops'.
  config.search.rank_by = 'accuracy'

  config.select = ml_collections.ConfigDict()
  config.select.top_n = 100  # One-Shot Top: from the best top_n by one-shot accuracy ...
  config.select.top_sample = 10  # ... a rank-stratified sample of this many.
  config.select.small_percentile = 90  # One-Shot Small: at or above this percentile ...
  config.select.small_n = 10  # ... the smallest this many by parameters.
  config.select.random_n = 10  # Random: uniformly from the scored candidates.
  config.select.include_all_on = True  # All-On: every input and op (outside the space).
  config.select.buckets = 5  # Equal-width one-shot accuracy ranges for the correlation ...
  config.select.per_bucket = 4  # ... with this many random archs each (the paper: 4).
  # More One-Shot Top groups ('top_by:RANK_BY'), each picked as above by another rank_by.
  config.select.top_by = ()

  config.retrain = ml_collections.ConfigDict()
  config.retrain.archs = ()  # Arch strings to retrain besides the search's selection.
  config.retrain.filters = 16  # F of the stand-alone models (paper: 16 to 128).
  config.retrain.num_steps = 20_000  # SGD steps per architecture.
  config.retrain.batch_size = 256  # Global batch.
  config.retrain.eval_batch_size = 500  # Evaluation batch (BN uses running averages).
  config.retrain.eval_splits = ('valid', 'test')  # Accuracies reported in result.json.
  config.retrain.learning_rate = 0.1  # Peak rate at lr_reference_batch_size ...
  config.retrain.lr_reference_batch_size = 256  # ... scaled linearly with batch_size.
  config.retrain.lr_schedule = 'cosine'  # 'cosine' | 'linear' | 'constant'.
  config.retrain.warmup_steps = 0  # Linear warm-up before the decay.
  config.retrain.momentum = 0.9  # SGD momentum ...
  config.retrain.nesterov = True  # ... Nesterov's.
  config.retrain.weight_decay = 1e-4  # L2 on every kernel.
  config.retrain.checkpoint_every = 2000  # Steps between checkpoints (and at the end).
  config.retrain.log_every = 100  # Steps between logged training metrics.
  config.retrain.eval_every = 0  # Steps between evaluations; 0: only at the end.

  config.report = ml_collections.ConfigDict()
  config.report.figures = True  # Write the PNG figures next to summary.md.
  config.report.accuracy_key = 'test_accuracy'  # result.json's stand-alone accuracy field.
  config.report.bootstrap = 1000  # Resamples for the rank correlations' 95% intervals.
  config.report.also_rank_by = ()  # More rank_by aggregates to compare in the tables.
  config.report.dpi = 120  # Resolution of the figures (6 x 4.5 in).
  # A CSV of true accuracies per arch (e.g. NAS-Bench-201's) to judge the ranking; None: off.
  config.report.ground_truth = ml_collections.config_dict.placeholder(str)
  config.report.ground_truth_arch_column = 'arch'  # Its column of arch strings, matched exactly ...
  config.report.ground_truth_accuracy_column = 'test_acc_200ep'  # ... and of accuracies (% or 0-1).
  return config
