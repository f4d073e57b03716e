//! A small layered layout for the DAG drawing: each node's layer is its longest path
//! from a root, and nodes within a layer are ordered by the barycenter of their
//! neighbours (a few sweeps down and up), which keeps most edges short and uncrossed.

/// Where a node sits: its layer (column, left to right) and row within the layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub layer: usize,
    pub row: usize,
}

/// Lays out `count` nodes given in topological order (parents before children) with
/// edges `(parent, child)` as indices.
pub fn layered(count: usize, edges: &[(usize, usize)]) -> Vec<Slot> {
    let mut parents: Vec<Vec<usize>> = vec![Vec::new(); count];
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); count];
    for &(p, c) in edges {
        parents[c].push(p);
        children[p].push(c);
    }
    let mut layer = vec![0usize; count];
    for i in 0..count {
        layer[i] = parents[i].iter().map(|&p| layer[p] + 1).max().unwrap_or(0);
    }
    let depth = layer.iter().max().map_or(0, |m| m + 1);
    let mut layers: Vec<Vec<usize>> = vec![Vec::new(); depth];
    for (i, &l) in layer.iter().enumerate() {
        layers[l].push(i);
    }
    let mut row = vec![0usize; count];
    let place = |layers: &Vec<Vec<usize>>, row: &mut Vec<usize>| {
        for members in layers {
            for (r, &i) in members.iter().enumerate() {
                row[i] = r;
            }
        }
    };
    place(&layers, &mut row);
    for sweep in 0..4 {
        let down = sweep % 2 == 0;
        let order: Vec<usize> = if down { (1..depth).collect() } else { (0..depth.saturating_sub(1)).rev().collect() };
        for l in order {
            let key = |i: usize| {
                let near = if down { &parents[i] } else { &children[i] };
                if near.is_empty() {
                    row[i] as f64
                } else {
                    near.iter().map(|&n| row[n] as f64).sum::<f64>() / near.len() as f64
                }
            };
            let mut keyed: Vec<(f64, usize, usize)> = layers[l].iter().map(|&i| (key(i), row[i], i)).collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            layers[l] = keyed.into_iter().map(|(_, _, i)| i).collect();
            for (r, &i) in layers[l].iter().enumerate() {
                row[i] = r;
            }
        }
    }
    (0..count).map(|i| Slot { layer: layer[i], row: row[i] }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_follow_the_longest_path_and_rows_are_unique_per_layer() {
        // 0 -> 2, 1 -> 3, 0 -> 3, 3 -> 4, 2 -> 4, 0 -> 4
        let slots = layered(5, &[(0, 2), (1, 3), (0, 3), (3, 4), (2, 4), (0, 4)]);
        let layers: Vec<usize> = slots.iter().map(|s| s.layer).collect();
        assert_eq!(layers, [0, 0, 1, 1, 2]);
        let mut first: Vec<usize> = slots.iter().filter(|s| s.layer == 1).map(|s| s.row).collect();
        first.sort();
        assert_eq!(first, [0, 1]);
    }

    #[test]
    fn barycenters_uncross_edges() {
        // Roots 0 and 1; 2 is the child of 1 and 3 the child of 0, given in crossing order.
        let slots = layered(4, &[(1, 2), (0, 3)]);
        assert!(slots[3].row < slots[2].row, "{slots:?}");
    }
}
