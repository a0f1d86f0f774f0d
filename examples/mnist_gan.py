"""A GAN on MNIST: an MLP generator and an MLP discriminator trained against each other with Adam.

The classic PyTorch-GAN MLP: the generator maps a latent vector z ~ N(0, 1) through
100-128-256-512-1024-784 linear layers with LeakyReLU(0.2) (and BatchNorm1d, eps 0.8, on the
256, 512 and 1024 units) to a tanh image in [-1, 1]; the discriminator maps an image through
784-512-256-1 with LeakyReLU(0.2) to a logit, trained with binary_cross_entropy_with_logits.
Both use Adam(lr=2e-4, betas=(0.5, 0.999)). Each epoch saves a grid of 64 samples (from the
same fixed latent vectors) to ``<out>/gan_epoch_NNN.png`` and ``<out>/gan_samples.png``, the
generator's weights to ``<out>/generator.npz``, and everything needed to go on training (both
networks, both optimizers' state, the epoch and the random generator) to
``<out>/checkpoint.npz``; ``--resume`` continues from there up to ``--epochs``.

Success is measured, not eyeballed: the LeNet-5 that examples/mnist_cnn.py trains (its weights
in examples/lenet5.npz) classifies 1,000 generated samples; the last printed line gives the
fraction whose top class probability is above 0.9 and whether all ten digits are present.

    python examples/mnist_gan.py --epochs 30 --out out/gan        # train, then evaluate
    python examples/mnist_gan.py --epochs 60 --resume --out out/gan  # 30 more epochs
    python examples/mnist_gan.py --eval-only --out out/gan        # evaluate out/gan/generator.npz
    python examples/mnist_gan.py --epochs 1 --limit 256 --no-eval # a quick smoke run
"""

import argparse
import json
import os
import sys
import time

import matplotlib

matplotlib.use("Agg")  # figures go to files, never to a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
try:
    import simplegrad  # noqa: F401
except ImportError:  # not installed: use the simplegrad.py of this checkout
    sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)  # mnist_data and mnist_cnn sit beside this script
from device_choice import CHOICES, HELP, use_device  # noqa: E402
from mnist_cnn import MEAN, STD, LeNet5  # noqa: E402  (the classifier that judges)
from mnist_data import load_mnist  # noqa: E402

import simplegrad as sg  # noqa: E402
from simplegrad import Adam, Tensor, nn, no_grad  # noqa: E402

F = nn.functional
IMAGE = 28 * 28


def make_generator(latent):
    """latent -> 128 -> 256 -> 512 -> 1024 -> 784, LeakyReLU(0.2), tanh output."""
    def block(n_in, n_out, normalize=True):
        layers = [nn.Linear(n_in, n_out)]
        if normalize:
            layers.append(nn.BatchNorm1d(n_out, eps=0.8))  # PyTorch-GAN's (large) eps
        layers.append(nn.LeakyReLU(0.2))
        return layers

    return nn.Sequential(*block(latent, 128, normalize=False), *block(128, 256),
                         *block(256, 512), *block(512, 1024), nn.Linear(1024, IMAGE), nn.Tanh())


def make_discriminator():
    """784 -> 512 -> 256 -> 1 logit, LeakyReLU(0.2)."""
    return nn.Sequential(nn.Linear(IMAGE, 512), nn.LeakyReLU(0.2), nn.Linear(512, 256),
                         nn.LeakyReLU(0.2), nn.Linear(256, 1))


def generate(generator, z, batch_size=256):
    """Images (N, 784) in [-1, 1] for the latent vectors z (N, latent), as a NumPy array."""
    generator.eval()  # BatchNorm1d uses its running statistics
    with no_grad():
        images = [generator(Tensor(z[i:i + batch_size])).numpy()
                  for i in range(0, len(z), batch_size)]
    return np.concatenate(images)


def save_grid(images, title, path):
    """An 8 x 8 grid of 64 images (64, 784) in [-1, 1]."""
    tiles = images[:64].reshape(8, 8, 28, 28).transpose(0, 2, 1, 3).reshape(8 * 28, 8 * 28)
    fig, ax = plt.subplots(figsize=(5, 5.3))
    ax.imshow((tiles + 1) / 2, cmap="gray", vmin=0, vmax=1)
    ax.set_title(title)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def evaluate_images(images, lenet_path):
    """Classify images (N, 784) in [-1, 1] with the trained LeNet-5 at lenet_path: (fraction
    with top class probability > 0.9, sorted digits among those confident samples)."""
    classifier = LeNet5()
    classifier.load_state_dict(sg.load(lenet_path))
    classifier.eval()
    n = len(images)
    x01 = (images + 1) / 2                                       # [-1, 1] -> [0, 1]
    x = ((x01 - MEAN) / STD).reshape(n, 1, 28, 28).astype(np.float32)
    with no_grad():
        probs = np.concatenate([classifier(Tensor(x[i:i + 250])).softmax(dim=1).numpy()
                                for i in range(0, n, 250)])
    confident = probs.max(axis=1) > 0.9
    digits = sorted(set(probs.argmax(axis=1)[confident].tolist()))
    return float(confident.mean()), digits


def evaluate(generator, lenet_path, n, latent, seed):
    """Classify n samples with the trained LeNet-5: (fraction with top probability > 0.9,
    sorted predicted digits). Returns None, with the reason, when the weights are absent."""
    if not os.path.exists(lenet_path):
        return None, (f"no LeNet-5 weights at {lenet_path} (train them with "
                      f"python examples/mnist_cnn.py)")
    z = np.random.default_rng(seed + 1).standard_normal((n, latent)).astype(np.float32)
    return evaluate_images(generate(generator, z), lenet_path), None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30, help="passes over the training set")
    parser.add_argument("--batch-size", type=int, default=64, help="images per step")
    parser.add_argument("--latent", type=int, default=100, help="size of the latent vector z")
    parser.add_argument("--lr", type=float, default=2e-4, help="Adam's learning rate (both)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the weights, z and order")
    parser.add_argument("--limit", type=int, default=None,
                        help="train on the first LIMIT images only (a quick run)")
    parser.add_argument("--data-dir", default=None,
                        help="folder of the MNIST IDX files (default: $SIMPLEGRAD_MNIST, "
                             "else ../shared/data/mnist beside the repository)")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip the MD5 check of the IDX files (custom or tiny data sets)")
    parser.add_argument("--device", choices=CHOICES, default="numpy", help=HELP)
    parser.add_argument("--out", default="out/gan",
                        help="folder for the sample grids and generator.npz")
    parser.add_argument("--lenet", default=os.path.join(HERE, "lenet5.npz"),
                        help="trained LeNet-5 weights (examples/mnist_cnn.py) for the evaluation")
    parser.add_argument("--eval-samples", type=int, default=1000,
                        help="generated samples the LeNet-5 classifies")
    parser.add_argument("--eval-only", action="store_true",
                        help="skip training: evaluate <out>/generator.npz")
    parser.add_argument("--no-eval", action="store_true",
                        help="skip the LeNet-5 evaluation after training")
    parser.add_argument("--eval-every", type=int, default=0, metavar="N",
                        help="also evaluate after every N-th epoch (0: only at the end)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the training saved in <out>/checkpoint.npz")
    args = parser.parse_args()
    use_device(args.device)

    sg.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out, exist_ok=True)
    weights = os.path.join(args.out, "generator.npz")
    generator = make_generator(args.latent)
    fixed_z = rng.standard_normal((64, args.latent)).astype(np.float32)  # same grid each epoch
    seconds_per_epoch = float("nan")

    if args.eval_only:
        if not os.path.exists(weights):
            sys.exit(f"--eval-only: no generator weights at {weights}; train first")
        generator.load_state_dict(sg.load(weights))
        epochs_done = "saved"
    else:
        try:
            images, _ = load_mnist(args.data_dir, "train", args.limit, verify=not args.no_verify)
        except (FileNotFoundError, ValueError) as e:
            sys.exit(str(e))
        real_all = (images.reshape(len(images), IMAGE).astype(np.float32) / 127.5 - 1.0)
        discriminator = make_discriminator()
        betas = (0.5, 0.999)
        opt_g = Adam(generator.parameters(), lr=args.lr, betas=betas)
        opt_d = Adam(discriminator.parameters(), lr=args.lr, betas=betas)
        batches = max(len(real_all) // args.batch_size, 1)  # drop the last partial batch
        checkpoint = os.path.join(args.out, "checkpoint.npz")
        first = 1
        if args.resume:
            if not os.path.exists(checkpoint):
                sys.exit(f"--resume: no checkpoint at {checkpoint}; train without --resume first")
            saved = sg.load(checkpoint)
            generator.load_state_dict(saved["generator"])
            discriminator.load_state_dict(saved["discriminator"])
            opt_g.load_state_dict(saved["opt_g"])
            opt_d.load_state_dict(saved["opt_d"])
            rng.bit_generator.state = json.loads(saved["rng"])
            first = saved["epoch"] + 1
            print(f"mnist_gan: resuming after epoch {saved['epoch']} from {checkpoint}")

        start = time.perf_counter()
        for epoch in range(first, args.epochs + 1):
            generator.train()
            order = rng.permutation(len(real_all))
            bar = tqdm(range(batches), desc=f"gan epoch {epoch}/{args.epochs}", unit="step",
                       mininterval=2.0)
            for b in bar:
                real = Tensor(real_all[order[b * args.batch_size:(b + 1) * args.batch_size]])
                n = real.shape[0]
                ones = Tensor(np.ones((n, 1), np.float32))
                zeros = Tensor(np.zeros((n, 1), np.float32))
                z = Tensor(rng.standard_normal((n, args.latent)).astype(np.float32))

                # generator: make the discriminator call its samples real
                fake = generator(z)
                loss_g = F.binary_cross_entropy_with_logits(discriminator(fake), ones)
                opt_g.zero_grad()
                loss_g.backward()
                opt_g.step()

                # discriminator: real images are 1, the (detached) samples 0
                fake = fake.detach()
                loss_d = (F.binary_cross_entropy_with_logits(discriminator(real), ones)
                          + F.binary_cross_entropy_with_logits(discriminator(fake), zeros)) / 2
                opt_d.zero_grad()
                loss_d.backward()
                opt_d.step()
                if b % 50 == 0:
                    bar.set_postfix(d=f"{loss_d.item():.3f}", g=f"{loss_g.item():.3f}")
            bar.close()
            seconds_per_epoch = (time.perf_counter() - start) / (epoch - first + 1)
            sg.save(generator.state_dict(), weights)
            sg.save({"generator": generator.state_dict(),
                     "discriminator": discriminator.state_dict(),
                     "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "epoch": epoch,
                     "rng": json.dumps(rng.bit_generator.state)}, checkpoint)
            title = f"GAN samples after epoch {epoch}"
            grid = generate(generator, fixed_z)
            save_grid(grid, title, os.path.join(args.out, f"gan_epoch_{epoch:03d}.png"))
            save_grid(grid, title, os.path.join(args.out, "gan_samples.png"))
            progress = ""
            if args.eval_every and epoch % args.eval_every == 0:
                result, reason = evaluate(generator, args.lenet, args.eval_samples, args.latent,
                                          args.seed)
                if result is not None:
                    progress = (f"; {result[0]:.1%} confident, digits "
                                f"{''.join(map(str, result[1])) or 'none'}")
            print(f"epoch {epoch}: loss_d {loss_d.item():.3f} loss_g {loss_g.item():.3f} "
                  f"({seconds_per_epoch:.1f} s/epoch){progress}", flush=True)
        epochs_done = f"{args.epochs} epochs"

    if not args.eval_only:
        trained = (f"after {epochs_done} of {batches} steps "
                   f"({seconds_per_epoch:.1f} s/epoch)")
    else:
        trained = f"from {weights}"
    if args.no_eval:
        print(f"mnist_gan: evaluation skipped (--no-eval) {trained}; samples in "
              f"{os.path.join(args.out, 'gan_samples.png')}, generator in {weights}")
        return
    result, reason = evaluate(generator, args.lenet, args.eval_samples, args.latent, args.seed)
    if result is None:
        print(f"mnist_gan: evaluation skipped: {reason}; {trained}; generator in {weights}")
        return
    fraction, digits = result
    present = "all ten digits present" if len(digits) == 10 else (
        f"digits present {''.join(map(str, digits)) or 'none'} (not all ten)")
    print(f"mnist_gan: {fraction:.1%} of {args.eval_samples} samples classified with "
          f"probability > 0.9, {present} {trained}")


if __name__ == "__main__":
    main()
