//! AdamW with decoupled weight decay, a linear warm-up then linear decay of the learning rate,
//! and gradient accumulation; its moments are part of a checkpoint, so a resumed run takes the
//! same steps it would have taken without the stop.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};
use lore_core::{Error, Result};

use crate::bert::{Weights, model_error, save_tensors};

/// The optimiser's settings.
#[derive(Clone, Debug)]
pub(crate) struct AdamWSettings {
    pub learning_rate: f64,
    /// The peak rate of weights the base model lacked (a new head), which start from noise.
    pub new_learning_rate: f64,
    pub weight_decay: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPSILON: f64 = 1e-8;

pub(crate) struct AdamW {
    settings: AdamWSettings,
    first: BTreeMap<String, Tensor>,
    second: BTreeMap<String, Tensor>,
    accumulated: BTreeMap<String, Tensor>,
    pending: usize,
    /// Optimiser steps taken.
    pub steps: usize,
}

impl AdamW {
    pub fn new(settings: AdamWSettings) -> AdamW {
        AdamW {
            settings,
            first: BTreeMap::new(),
            second: BTreeMap::new(),
            accumulated: BTreeMap::new(),
            pending: 0,
            steps: 0,
        }
    }

    /// The share of the peak learning rate at the next step: a linear warm-up from 0, then a
    /// linear decay to 0.
    fn schedule(&self) -> f64 {
        let AdamWSettings { warmup_steps, total_steps, .. } = self.settings;
        let step = self.steps + 1;
        if step <= warmup_steps {
            step as f64 / warmup_steps as f64
        } else {
            let rest = total_steps.saturating_sub(warmup_steps).max(1);
            (total_steps.saturating_sub(step) as f64 / rest as f64).max(0.0)
        }
    }

    /// Adds one micro-batch's gradients.
    pub fn accumulate(&mut self, weights: &Weights, grads: &GradStore) -> Result<()> {
        for (name, var) in weights.vars() {
            let Some(grad) = grads.get(var.as_tensor()) else { continue };
            let sum = match self.accumulated.remove(name) {
                Some(sum) => (sum + grad).map_err(model_error)?,
                None => grad.clone(),
            };
            self.accumulated.insert(name.clone(), sum);
        }
        self.pending += 1;
        Ok(())
    }

    /// Updates the weights with the mean of the accumulated gradients.
    pub fn step(&mut self, weights: &Weights) -> Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        let share = self.schedule();
        self.steps += 1;
        let t = self.steps as i32;
        let (correction1, correction2) = (1.0 - BETA1.powi(t), 1.0 - BETA2.powi(t));
        let scale = 1.0 / self.pending as f64;
        for (name, var) in weights.vars() {
            let Some(grad) = self.accumulated.remove(name) else { continue };
            let peak = if weights.is_new(name) { self.settings.new_learning_rate } else { self.settings.learning_rate };
            let rate = peak * share;
            let decay = 1.0 - rate * self.settings.weight_decay;
            let update = || -> candle_core::Result<(Tensor, Tensor)> {
                let grad = (grad * scale)?;
                let first = match self.first.get(name) {
                    Some(m) => ((m * BETA1)? + (&grad * (1.0 - BETA1))?)?,
                    None => (&grad * (1.0 - BETA1))?,
                };
                let second = match self.second.get(name) {
                    Some(v) => ((v * BETA2)? + (grad.sqr()? * (1.0 - BETA2))?)?,
                    None => (grad.sqr()? * (1.0 - BETA2))?,
                };
                let step = ((&first / correction1)? / ((&second / correction2)?.sqrt()? + EPSILON)?)?;
                // Biases and layer-norm parameters are not decayed, as in BERT's recipe.
                let decayed = if var.rank() > 1 { (var.as_tensor() * decay)? } else { var.as_tensor().clone() };
                var.set(&(decayed - (step * rate)?)?)?;
                Ok((first, second))
            };
            let (first, second) = update().map_err(model_error)?;
            self.first.insert(name.clone(), first);
            self.second.insert(name.clone(), second);
        }
        self.pending = 0;
        Ok(())
    }

    /// Writes the moments to `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut tensors: BTreeMap<String, Tensor> = BTreeMap::new();
        for (name, m) in &self.first {
            tensors.insert(format!("first/{name}"), m.clone());
        }
        for (name, v) in &self.second {
            tensors.insert(format!("second/{name}"), v.clone());
        }
        let named: BTreeMap<&str, Tensor> = tensors.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        save_tensors(&named, path)
    }

    /// Reads the moments written by [`AdamW::save`] after `steps` steps.
    pub fn restore(&mut self, path: &Path, steps: usize) -> Result<()> {
        let tensors = candle_core::safetensors::load(path, &Device::Cpu)
            .map_err(|e| Error::Model(format!("cannot read the checkpoint {}: {e}", path.display())))?;
        for (name, tensor) in tensors {
            if let Some(var) = name.strip_prefix("first/") {
                self.first.insert(var.to_string(), tensor);
            } else if let Some(var) = name.strip_prefix("second/") {
                self.second.insert(var.to_string(), tensor);
            }
        }
        self.steps = steps;
        Ok(())
    }
}
