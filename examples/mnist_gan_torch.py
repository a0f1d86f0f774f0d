"""The GAN of examples/mnist_gan.py written in PyTorch, judged by the same LeNet-5: a control.

Same networks (PyTorch-GAN's MLP generator with BatchNorm1d(eps=0.8) and MLP discriminator),
same Adam(lr=2e-4, betas=(0.5, 0.999)), batch 64, one generator step then one discriminator
step, and after each epoch the same measure as mnist_gan.py: simplegrad's LeNet-5
(examples/lenet5.npz) classifies 1,000 samples from the same latent vectors, and the line
gives the share above 0.9 confidence and the digits among them. It tells what the recipe
reaches in PyTorch, independently of simplegrad's training code.

    python examples/mnist_gan_torch.py --epochs 30
"""

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from mnist_gan import IMAGE, evaluate_images  # noqa: E402

try:
    import torch
except ImportError:
    sys.exit("mnist_gan_torch.py needs PyTorch: pip install torch==2.13.0")
from mnist_data import load_mnist  # noqa: E402


def make_generator(latent):
    def block(n_in, n_out, normalize=True):
        layers = [torch.nn.Linear(n_in, n_out)]
        if normalize:
            layers.append(torch.nn.BatchNorm1d(n_out, 0.8))  # eps 0.8, as PyTorch-GAN
        layers.append(torch.nn.LeakyReLU(0.2))
        return layers

    return torch.nn.Sequential(*block(latent, 128, normalize=False), *block(128, 256),
                               *block(256, 512), *block(512, 1024),
                               torch.nn.Linear(1024, IMAGE), torch.nn.Tanh())


def make_discriminator():
    return torch.nn.Sequential(torch.nn.Linear(IMAGE, 512), torch.nn.LeakyReLU(0.2),
                               torch.nn.Linear(512, 256), torch.nn.LeakyReLU(0.2),
                               torch.nn.Linear(256, 1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--latent", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--limit", type=int, default=None, help="the first LIMIT images only")
    parser.add_argument("--lenet", default=os.path.join(HERE, "lenet5.npz"))
    parser.add_argument("--eval-samples", type=int, default=1000)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    images, _ = load_mnist(args.data_dir, "train", args.limit)
    real_all = torch.from_numpy(images.reshape(len(images), IMAGE).astype(np.float32)
                                / 127.5 - 1.0)
    generator, discriminator = make_generator(args.latent), make_discriminator()
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    z_eval = np.random.default_rng(args.seed + 1).standard_normal(
        (args.eval_samples, args.latent)).astype(np.float32)  # mnist_gan.py's vectors
    batches = len(real_all) // args.batch_size
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        order = torch.randperm(len(real_all))
        for b in range(batches):
            real = real_all[order[b * args.batch_size:(b + 1) * args.batch_size]]
            n = len(real)
            ones, zeros = torch.ones(n, 1), torch.zeros(n, 1)
            fake = generator(torch.randn(n, args.latent))
            loss_g = bce(discriminator(fake), ones)
            opt_g.zero_grad()
            loss_g.backward()
            opt_g.step()
            fake = fake.detach()
            loss_d = (bce(discriminator(real), ones) + bce(discriminator(fake), zeros)) / 2
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
        seconds = time.perf_counter() - start
        generator.eval()
        with torch.no_grad():
            samples = generator(torch.from_numpy(z_eval)).numpy()
        generator.train()
        fraction, digits = evaluate_images(samples, args.lenet)
        print(f"epoch {epoch}: {fraction:.1%} confident, digits "
              f"{''.join(map(str, digits)) or 'none'} ({seconds:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
