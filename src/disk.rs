//! Work on many small files at once. A read that misses the page cache waits on the disk,
//! and with one thread per core (rayon) the cores then sit idle while the disk has one
//! request per core to serve. A project's 10,000s of model and compiled files are read
//! on more threads than cores, so the disk has many requests at a time.

/// Threads that work on files at once.
const THREADS: usize = 8;

/// Fewer items than this are worked on in the calling thread.
const AT_LEAST: usize = 256;

/// `f` of each item, in order, worked out on up to [`THREADS`] threads.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    if items.len() < AT_LEAST {
        return items.iter().map(f).collect();
    }
    let f = &f;
    std::thread::scope(|scope| {
        let chunks: Vec<_> = items
            .chunks(items.len().div_ceil(THREADS))
            .map(|chunk| scope.spawn(move || chunk.iter().map(f).collect::<Vec<R>>()))
            .collect();
        chunks.into_iter().flat_map(|chunk| chunk.join().expect("a file thread panicked")).collect()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_the_order_of_the_items() {
        for n in [0, 1, 255, 256, 1000, 4099] {
            let items: Vec<usize> = (0..n).collect();
            assert_eq!(super::map(&items, |i| i * 2), items.iter().map(|i| i * 2).collect::<Vec<_>>());
        }
    }
}
