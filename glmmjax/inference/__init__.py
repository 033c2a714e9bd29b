"""Inference after the fit: tests, intervals, model comparison, marginal means, R².

    anova(m0, m1, ...)        likelihood-ratio tests of nested models (lme4's anova)
    Anova(fit, type="II")     Wald chi-square tests per term (car::Anova, Type II / III)
    ddf_coef_table(fit, ddf)  t tests with Satterthwaite / Kenward-Roger df (lmerTest)
    ddf_anova(fit, ddf)       F tests per term with those df (lmerTest's anova(fm))
    contest(fit, L, ddf)      F test of L beta = 0
    vcov_varpar, kr_vcov      covariance of the variance parameters; KR-adjusted vcov(beta)
    emmeans(fit, specs, ...)  estimated marginal means and pairwise contrasts (emmeans)
    r2_nakagawa(fit)          marginal and conditional R² (performance::r2_nakagawa)
    confint(fit, method)      profile-likelihood or Wald intervals (lme4's confint)
    profile(fit)              likelihood profiles (lme4's profile), for plots and intervals
"""
from ._confint import confint as confint
from ._confint import profile_confint as profile_confint
from ._ddf import contest as contest
from ._ddf import ddf_anova as ddf_anova
from ._ddf import ddf_coef_table as ddf_coef_table
from ._ddf import kr_vcov as kr_vcov
from ._ddf import vcov_varpar as vcov_varpar
from ._emmeans import EMMeans as EMMeans
from ._emmeans import emmeans as emmeans
from ._lrt import anova as anova
from ._profile import profile as profile
from ._r2 import r2_nakagawa as r2_nakagawa
from ._wald_anova import Anova as Anova

__all__ = ["anova", "Anova", "ddf_coef_table", "ddf_anova", "contest", "vcov_varpar", "kr_vcov", "emmeans",
           "EMMeans", "r2_nakagawa", "confint", "profile_confint", "profile"]
