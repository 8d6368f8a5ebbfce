//! [`PanelView`]: the arrays sample building needs, borrowed from an opened panel or from a
//! writer's arrays in memory, so that the builders need not know which.

/// The arrays sample building needs, borrowed from a mapped [`Panel`](super::Panel) or in-memory
/// [`PanelArrays`](super::PanelArrays).
#[derive(Clone, Copy)]
pub struct PanelView<'a> {
    pub n_dates: usize,
    pub n_stocks: usize,
    pub n_styles: usize,
    pub n_price_fields: usize,
    /// Index of `vwap` within the price fields.
    pub vwap_field: usize,
    pub dates: &'a [String],
    pub features: &'a [f32],
    pub price: &'a [f32],
    pub tradable: &'a [u8],
    pub styles: &'a [f32],
    /// `[T, N]`, −1 unknown.
    pub industry: &'a [i16],
    /// `[T, N]` log market cap.
    pub size: &'a [f32],
}

impl PanelView<'_> {
    pub fn flags(&self, t: usize, i: usize) -> u8 {
        self.tradable[t * self.n_stocks + i]
    }
    pub fn vwap(&self, t: usize, i: usize) -> f32 {
        self.price[(t * self.n_stocks + i) * self.n_price_fields + self.vwap_field]
    }
}
