//! Random sequences of Next/Skip/Reset/Clone over several enumerators agree with a plain
//! model: a vector and one index per enumerator.

use proptest::prelude::*;
use qmgr_enum::{Fetched, Snapshot, SnapshotEnumerator};

#[derive(Clone, Debug)]
enum Op {
    Next { which: usize, n: usize },
    Skip { which: usize, n: usize },
    Reset { which: usize },
    Clone { which: usize },
}

fn op() -> impl Strategy<Value = Op> {
    // Request sizes go a little past the largest snapshot so the end is hit often.
    prop_oneof![
        4 => (any::<usize>(), 0..12_usize).prop_map(|(which, n)| Op::Next { which, n }),
        3 => (any::<usize>(), 0..12_usize).prop_map(|(which, n)| Op::Skip { which, n }),
        1 => any::<usize>().prop_map(|which| Op::Reset { which }),
        2 => any::<usize>().prop_map(|which| Op::Clone { which }),
    ]
}

fn expected_fetched(requested: usize, served: usize) -> Fetched {
    if requested == served {
        Fetched::All
    } else {
        Fetched::Short
    }
}

proptest! {
    #[test]
    fn enumerators_match_the_model(len in 0..8_usize, ops in prop::collection::vec(op(), 0..60)) {
        let items: Vec<usize> = (100..100 + len).collect();
        let snapshot = Snapshot::new(items.clone());
        let mut enumerators: Vec<SnapshotEnumerator<usize>> = vec![snapshot.enumerator()];
        let mut model_positions: Vec<usize> = vec![0];

        for op in ops {
            match op {
                Op::Next { which, n } => {
                    let i = which % enumerators.len();
                    let start = model_positions[i];
                    let end = (start + n).min(len);
                    model_positions[i] = end;
                    let batch = enumerators[i].next(n);
                    prop_assert_eq!(batch.items, &items[start..end]);
                    prop_assert_eq!(batch.fetched, expected_fetched(n, end - start));
                }
                Op::Skip { which, n } => {
                    let i = which % enumerators.len();
                    let start = model_positions[i];
                    let end = (start + n).min(len);
                    model_positions[i] = end;
                    prop_assert_eq!(enumerators[i].skip(n), expected_fetched(n, end - start));
                }
                Op::Reset { which } => {
                    let i = which % enumerators.len();
                    model_positions[i] = 0;
                    enumerators[i].reset();
                }
                Op::Clone { which } => {
                    let i = which % enumerators.len();
                    model_positions.push(model_positions[i]);
                    enumerators.push(enumerators[i].clone());
                }
            }

            for (enumerator, &position) in enumerators.iter().zip(&model_positions) {
                prop_assert_eq!(enumerator.position(), position);
                prop_assert_eq!(enumerator.remaining(), len - position);
                prop_assert_eq!(enumerator.count(), len);
                prop_assert!(Snapshot::ptr_eq(enumerator.snapshot(), &snapshot));
            }
        }
        // The test's own handle plus one per enumerator: no clone copied the items.
        prop_assert_eq!(snapshot.share_count(), enumerators.len() + 1);
    }
}
