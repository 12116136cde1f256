"""Labelled images turned into model-ready tensors, in seeded batches.

Training images are decoded once into working images; each view's crop, flip and turn are drawn
from (seed, epoch, image index), so a run is reproducible however the batches are split across
loader workers or DistributedDataParallel ranks, and the pixels are resampled for the whole batch
on the model's device (`model_input`, augment.render_views). A file that cannot be read is dropped
from its batch and reported, not fatal: benchmark readers do not decode every one of tens of
thousands of test images up front.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from ..data.images import DECODE_THREADS, load_image
from ..data.records import LabeledImage, Skipped
from ..errors import Cancelled, ImageRejected
from .augment import Augmentation, render_views, working_image
from .transforms import Preprocessing, takes_pixel_tensors, test_view, test_view_of_pixels, view_generator

# Decoded training images are kept in memory up to this many (a few-shot task has tens to a
# few hundred); larger sets are read from disk at every epoch, by loader workers if asked.
CACHE_LIMIT = 2000


class ImageViews(Dataset):
    """Images as tensors: augmented training views, or the plain test view.

    Args:
        items: the labelled images.
        prep: the backbone's preprocessing.
        train: augment (`augmentation`, the recipe's by default) rather than centre-crop.
        seed: run seed, mixed with the epoch and index into each view's randomness.
        decoded: training views of the same `items` whose kept working images test views may be
            made from, instead of decoding the photos again (see `unshrunk_photo`).
    """

    def __init__(self, items: list[LabeledImage], prep: Preprocessing, *, train: bool, seed: int = 0,
                 augmentation: Augmentation | None = None, decoded: ImageViews | None = None):
        self.items = list(items)
        self.prep = prep
        self.train = train
        self.augmentation = augmentation or Augmentation.of("recipe")
        self.seed = seed
        self.epoch = 0
        self._cache: dict[int, object] = {}
        self._cache_enabled = train and len(self.items) <= CACHE_LIMIT
        self._unshrunk: set[int] = set()  # cached working images that hold the decoded photo as it was
        if decoded is not None and decoded.items != self.items:
            raise ValueError("decoded views must hold the same images in the same order")
        self._decoded = decoded

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def preload(self, threads: int | None = None, cancel=None) -> None:
        """Decode every image into the cache now, several at a time: Pillow releases the GIL while
        it decodes and shrinks, so threads overlap where the first epoch would decode one by one
        (1,600 JPEGs of 224 px on a 2-core machine: 1.49 s on one thread, 1.09 s on two).
        Images that fail are left for `__getitem__` to report. `cancel` (an object with is_set())
        stops the decoding and raises Cancelled."""
        if not self._cache_enabled:
            return

        def decode(index: int) -> None:
            if cancel is not None and cancel.is_set():
                return
            try:
                self._image(index)
            except (ImageRejected, OSError):
                pass

        with ThreadPoolExecutor(max_workers=threads or DECODE_THREADS) as pool:
            list(pool.map(decode, range(len(self.items))))
        if cancel is not None and cancel.is_set():
            raise Cancelled("Tuning was cancelled; nothing was saved.")

    def __len__(self) -> int:
        return len(self.items)

    def _image(self, index: int):
        if self._cache_enabled:
            cached = self._cache.get(index)  # dict access is atomic under the GIL; no lock needed
            if cached is not None:
                return cached
        image = load_image(self.items[index].path)
        if self.train:
            limit = self.augmentation.working_limit(self.prep.size)
            if self._cache_enabled and min(image.size) <= limit:
                self._unshrunk.add(index)
            image = working_image(image, limit)
        if self._cache_enabled:
            self._cache[index] = image
        return image

    def unshrunk_pixels(self, index: int) -> torch.Tensor | None:
        """The decoded photo of `index` as uint8 pixels (3, H, W), where its kept working image was not
        shrunk (then its pixels are the photo's); None otherwise. After tuning, the training photos'
        test views (the class means that say "unknown") are made from them: no second decode."""
        return self._cache.get(index) if index in self._unshrunk else None

    def __getitem__(self, index: int):
        item = self.items[index]
        if self._decoded is not None and takes_pixel_tensors(self.prep):
            pixels = self._decoded.unshrunk_pixels(index)
            if pixels is not None:
                return test_view_of_pixels(pixels, self.prep), item.label, index, None, None
        try:
            image = self._image(index)
        except (ImageRejected, OSError) as error:
            return None, item.label, index, str(error)
        if self.train:
            # The view's random draws only; its pixels are made on the device, with the batch's.
            params = self.augmentation.draw(image.shape[2], image.shape[1],
                                            view_generator(self.seed, self.epoch, index))
            return image, item.label, index, None, params
        return test_view(image, self.prep), item.label, index, None, None


@dataclass
class Batch:
    """Test batches hold model-ready `images`; training batches hold the working images in
    `sources` and each view's draws in `params`, rendered by `model_input`."""

    images: torch.Tensor | None
    labels: torch.Tensor
    indices: torch.Tensor
    skipped: list[tuple[int, str]]
    sources: list[torch.Tensor] | None = None
    params: torch.Tensor | None = None


def collate(samples) -> Batch:
    good = [s for s in samples if s[0] is not None]
    skipped = [(s[2], s[3]) for s in samples if s[0] is None]
    if not good:
        return Batch(torch.empty(0), torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long), skipped)
    labels, indices = torch.tensor([s[1] for s in good]), torch.tensor([s[2] for s in good])
    if good[0][4] is not None:
        return Batch(None, labels, indices, skipped, [s[0] for s in good], torch.tensor([s[4] for s in good]))
    return Batch(torch.stack([s[0] for s in good]), labels, indices, skipped)


def model_input(batch: Batch, prep: Preprocessing, device) -> torch.Tensor:
    """The batch's images as the model's input on `device` (training views rendered there)."""
    if batch.sources is not None:
        if batch.params.dim() == 3:  # a tiled run: several views of each photo, photo by photo
            per_photo = batch.params.shape[1]
            sources = [source for source in batch.sources for _ in range(per_photo)]
            return render_views(sources, batch.params.reshape(-1, batch.params.shape[2]), prep, device)
        return render_views(batch.sources, batch.params, prep, device)
    return batch.images.to(device, non_blocking=True)


def epoch_batches(n_items: int, batch_size: int, seed: int, epoch: int, *, shuffle: bool = True,
                  drop_last: bool | None = None) -> list[list[int]]:
    """Index lists of one epoch. Shuffled with (seed, epoch); like Dassl, the last partial batch
    is dropped when the data holds at least one full batch."""
    if shuffle:
        order = torch.randperm(n_items, generator=view_generator(seed, epoch, -1)).tolist()
    else:
        order = list(range(n_items))
    if drop_last is None:
        drop_last = shuffle and n_items >= batch_size
    batches = [order[i:i + batch_size] for i in range(0, n_items, batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


def loader(views: ImageViews, batches: list[list[int]], num_workers: int = 0) -> DataLoader:
    """A DataLoader over precomputed index batches (workers only help for large data sets)."""
    return DataLoader(views, batch_sampler=batches, num_workers=num_workers, collate_fn=collate,
                      pin_memory=torch.cuda.is_available(), persistent_workers=False)


def skipped_records(views: ImageViews, skipped: list[tuple[int, str]]) -> list[Skipped]:
    return [Skipped(str(views.items[index].path), reason) for index, reason in skipped]
