//! Where the memory store keeps its values' bytes: fixed-size slots in
//! 64 KiB chunks, one list of chunks per size class, as memcached's slab
//! allocator does.
//!
//! Why not one heap allocation per value: a session lives for hours while
//! the requests around it allocate and free buffers of the same sizes by
//! the thousand. In the general allocator they share pages, and a page
//! that still holds one session cannot be given back: measured at 100,000
//! sessions, each cost 1.07 KB of RSS for about 530 bytes live
//! (docs/performance.md). In a slab, values only sit beside values.
//!
//! - A value goes in the smallest class that holds it (64-byte steps up to
//!   1 KiB, then steps of an eighth up to 64 KiB; larger values get a chunk
//!   of their own), so a slot wastes under 64 bytes or 12.5%.
//! - A freed slot is reused before a new one is taken, lowest first, so
//!   that the last chunk of a class empties as its values expire; an empty
//!   last chunk is given back at once. After a peak, the memory goes back
//!   to the allocator as the peak's values expire.
//! - Every operation is O(log n) (the free slots are a B-tree set).

use std::collections::{BTreeMap, BTreeSet};

/// The bytes of one chunk of a class.
const CHUNK_BYTES: usize = 64 * 1024;

/// The largest slot; a larger value is a chunk of its own.
const MAX_SLOT: usize = 64 * 1024;

/// Where a value is: its class, its slot and its length (12 bytes, the
/// size of the `Box<[u8]>` it replaces, less its pointer's alignment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    class: u8,
    index: u32,
    len: u32,
}

/// The class for values larger than [`MAX_SLOT`].
const OWN: u8 = u8::MAX;

/// The slot sizes of the classes, smallest first.
fn slot_sizes() -> Vec<usize> {
    let mut sizes: Vec<usize> = (1..=16).map(|i| i * 64).collect();
    let mut s = 1024;
    while s < MAX_SLOT {
        s = (s + s / 8).div_ceil(64) * 64;
        sizes.push(s.min(MAX_SLOT));
    }
    sizes
}

struct Class {
    slot: usize,
    per_chunk: usize,
    chunks: Vec<Box<[u8]>>,
    /// Values in each chunk.
    live: Vec<u32>,
    /// Freed slots below `fresh`.
    free: BTreeSet<u32>,
    /// Slots from here on were never handed out.
    fresh: u32,
}

impl Class {
    fn new(slot: usize) -> Class {
        Class {
            slot,
            per_chunk: (CHUNK_BYTES / slot).max(1),
            chunks: Vec::new(),
            live: Vec::new(),
            free: BTreeSet::new(),
            fresh: 0,
        }
    }

    fn place(&self, index: u32) -> (usize, usize) {
        let i = index as usize;
        (i / self.per_chunk, (i % self.per_chunk) * self.slot)
    }

    fn put(&mut self, bytes: &[u8]) -> u32 {
        let index = match self.free.pop_first() {
            Some(i) => i,
            None => {
                let i = self.fresh;
                if i as usize == self.chunks.len() * self.per_chunk {
                    // Zeroed: the pages are the system's until written.
                    self.chunks
                        .push(vec![0u8; self.per_chunk * self.slot].into_boxed_slice());
                    self.live.push(0);
                }
                self.fresh += 1;
                i
            }
        };
        let (chunk, at) = self.place(index);
        self.chunks[chunk][at..at + bytes.len()].copy_from_slice(bytes);
        self.live[chunk] += 1;
        index
    }

    fn get(&self, index: u32, len: u32) -> &[u8] {
        let (chunk, at) = self.place(index);
        &self.chunks[chunk][at..at + len as usize]
    }

    fn free(&mut self, index: u32) {
        let (chunk, _) = self.place(index);
        self.live[chunk] -= 1;
        self.free.insert(index);
        // Give back every empty chunk at the end.
        while self.live.last() == Some(&0) {
            self.chunks.pop();
            self.live.pop();
            let first = (self.chunks.len() * self.per_chunk) as u32;
            self.free.split_off(&first);
            self.fresh = first;
        }
    }
}

/// Values' bytes, by [`Slot`].
pub struct Slab {
    classes: Vec<Class>,
    /// Values larger than [`MAX_SLOT`], each its own allocation.
    own: BTreeMap<u32, Box<[u8]>>,
    own_bytes: usize,
    next_own: u32,
}

impl Default for Slab {
    fn default() -> Self {
        Slab {
            classes: slot_sizes().into_iter().map(Class::new).collect(),
            own: BTreeMap::new(),
            own_bytes: 0,
            next_own: 0,
        }
    }
}

impl Slab {
    /// Keep a copy of `bytes`.
    pub fn put(&mut self, bytes: &[u8]) -> Slot {
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        let class = self.classes.partition_point(|c| c.slot < bytes.len());
        match self.classes.get_mut(class) {
            Some(c) => Slot {
                class: class as u8,
                index: c.put(bytes),
                len,
            },
            None => {
                // Ids are never reused while held: skip any still taken
                // (after 2³² large values, the counter wraps).
                while self.own.contains_key(&self.next_own) {
                    self.next_own = self.next_own.wrapping_add(1);
                }
                let index = self.next_own;
                self.next_own = self.next_own.wrapping_add(1);
                self.own.insert(index, bytes.into());
                self.own_bytes += bytes.len();
                Slot {
                    class: OWN,
                    index,
                    len,
                }
            }
        }
    }

    /// The bytes in `slot`.
    pub fn get(&self, slot: Slot) -> &[u8] {
        match self.classes.get(slot.class as usize) {
            Some(c) => c.get(slot.index, slot.len),
            None => self.own.get(&slot.index).map(|b| &b[..]).unwrap_or(&[]),
        }
    }

    /// Free `slot`, which must not be used again.
    pub fn free(&mut self, slot: Slot) {
        match self.classes.get_mut(slot.class as usize) {
            Some(c) => c.free(slot.index),
            None => {
                if let Some(b) = self.own.remove(&slot.index) {
                    self.own_bytes -= b.len();
                }
            }
        }
    }

    /// Bytes held in chunks and large values (what the slab costs, not
    /// what its values use): one sum over the classes.
    pub fn reserved(&self) -> usize {
        let chunks: usize = self
            .classes
            .iter()
            .map(|c| c.chunks.len() * c.per_chunk * c.slot)
            .sum();
        chunks + self.own_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_grow_by_at_most_an_eighth_and_end_at_the_largest_slot() {
        let sizes = slot_sizes();
        assert_eq!(sizes[0], 64);
        assert_eq!(*sizes.last().unwrap(), MAX_SLOT);
        for w in sizes.windows(2) {
            assert!(w[0] < w[1], "{sizes:?}");
            assert!(w[1] - w[0] <= (w[0] / 8).max(64) + 63, "{sizes:?}");
            assert_eq!(w[1] % 64, 0);
        }
        assert!(sizes.len() < OWN as usize);
    }

    #[test]
    fn values_of_every_size_come_back_as_they_went_in() {
        let mut slab = Slab::default();
        let sizes = [
            0,
            1,
            63,
            64,
            65,
            430,
            1024,
            1025,
            5000,
            MAX_SLOT,
            MAX_SLOT + 1,
            200_000,
        ];
        let slots: Vec<(Slot, Vec<u8>)> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let v: Vec<u8> = (0..n).map(|j| (i * 31 + j * 7) as u8).collect();
                (slab.put(&v), v)
            })
            .collect();
        for (slot, v) in &slots {
            assert_eq!(slab.get(*slot), &v[..]);
        }
        for (slot, _) in slots {
            slab.free(slot);
        }
        assert_eq!(slab.reserved(), 0, "everything freed is given back");
    }

    #[test]
    fn freed_slots_are_reused_lowest_first_and_an_empty_last_chunk_is_given_back() {
        let mut slab = Slab::default();
        let value = [7u8; 430];
        let per_chunk = CHUNK_BYTES / 448;
        let slots: Vec<Slot> = (0..3 * per_chunk).map(|_| slab.put(&value)).collect();
        assert_eq!(slab.reserved(), 3 * per_chunk * 448);
        // Two freed in the first chunk: the next two values take them,
        // lowest first, and no chunk is added.
        slab.free(slots[5]);
        slab.free(slots[2]);
        assert_eq!(slab.put(&value).index, slots[2].index);
        assert_eq!(slab.put(&value).index, slots[5].index);
        assert_eq!(slab.reserved(), 3 * per_chunk * 448);
        // The last chunk emptied: given back; the middle one emptied but
        // the last still holds one value: kept until that one goes.
        for s in &slots[per_chunk..3 * per_chunk - 1] {
            slab.free(*s);
        }
        assert_eq!(slab.reserved(), 3 * per_chunk * 448);
        slab.free(slots[3 * per_chunk - 1]);
        assert_eq!(slab.reserved(), per_chunk * 448);
        // A new value goes in the lowest free slot (none: the first chunk
        // is full), so into a new second chunk.
        let again = slab.put(&value);
        assert_eq!(again.index as usize, per_chunk);
        assert_eq!(slab.get(again), &value[..]);
        assert_eq!(slab.reserved(), 2 * per_chunk * 448);
    }
}
