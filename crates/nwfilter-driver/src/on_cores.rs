//! Work over many items spread on the machine's cores: a daemon start or
//! `reload` reads and compiles every binding while, at a start after a
//! flush, every port is unfiltered.

/// Below this many items per thread one thread does them all: a thread's
/// start costs more than a few items.
const ITEMS_PER_THREAD: usize = 64;

/// `f` of each item, in the items' order, on up to as many threads as the
/// machine has cores. A part whose thread cannot be started is done on
/// the caller's thread. A panic in `f` is the caller's, as on one thread.
pub(crate) fn map<T: Sync, U: Send>(items: &[T], f: impl Fn(&T) -> U + Sync) -> Vec<U> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = cores.min(items.len() / ITEMS_PER_THREAD).max(1);
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let per_thread = items.len().div_ceil(threads);
    let f = &f;
    let each = move |part: &[T]| part.iter().map(f).collect::<Vec<U>>();
    std::thread::scope(|scope| {
        let parts: Vec<_> = items
            .chunks(per_thread)
            .map(|part| {
                let started = std::thread::Builder::new().spawn_scoped(scope, move || each(part));
                (part, started)
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|(part, started)| match started {
                Ok(thread) => match thread.join() {
                    Ok(done) => done,
                    Err(panic) => std::panic::resume_unwind(panic),
                },
                Err(_) => each(part),
            })
            .collect()
    })
}

/// `here()` on the caller's thread while `there()` runs on another, for
/// work over `items` items: below [`ITEMS_PER_THREAD`], or when no thread
/// can be started, `there()` runs after `here()` on the caller's thread.
/// A panic in `there` is the caller's.
pub(crate) fn beside<A, B: Send>(
    items: usize,
    here: impl FnOnce() -> A,
    there: impl FnOnce() -> B + Send,
) -> (A, B) {
    if items < ITEMS_PER_THREAD {
        let a = here();
        return (a, there());
    }
    // Shared so that, should no thread start, the caller still has it.
    let there = std::sync::Mutex::new(Some(there));
    std::thread::scope(|scope| {
        let started = std::thread::Builder::new().spawn_scoped(scope, || {
            let there = there.lock().unwrap_or_else(|e| e.into_inner()).take();
            there.map(|f| f())
        });
        let a = here();
        let b = match started.map(|thread| thread.join()) {
            Ok(Ok(Some(b))) => b,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Ok(Ok(None)) | Err(_) => {
                let there = there.lock().unwrap_or_else(|e| e.into_inner()).take();
                there.expect("not taken by a thread that did not start")()
            }
        };
        (a, b)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_items_come_back_in_their_order() {
        let items: Vec<usize> = (0..1000).collect();
        let threads = std::sync::Mutex::new(std::collections::HashSet::new());
        let out = map(&items, |i| {
            threads.lock().unwrap().insert(std::thread::current().id());
            i * 2
        });
        assert_eq!(out, (0..1000).map(|i| i * 2).collect::<Vec<_>>());
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(
            threads.lock().unwrap().len(),
            cores.min(1000 / ITEMS_PER_THREAD)
        );
    }

    #[test]
    fn few_items_stay_on_the_callers_thread() {
        let here = std::thread::current().id();
        let out = map(&[1, 2, 3], |i| (i + 1, std::thread::current().id()));
        assert_eq!(out, [(2, here), (3, here), (4, here)]);
    }

    #[test]
    fn beside_runs_both_and_the_second_elsewhere_only_for_many_items() {
        let here = std::thread::current().id();
        let id = || std::thread::current().id();
        let (a, b) = beside(3, id, id);
        assert_eq!((a, b), (here, here));
        let (a, b) = beside(ITEMS_PER_THREAD, id, id);
        assert_eq!(a, here);
        assert_ne!(b, here, "the second ran on a thread of its own");
    }
}
