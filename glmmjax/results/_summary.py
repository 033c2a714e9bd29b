class Summary:
    def __init__(self, fit):
        self.fit = fit

    def short(self):
        return f"<FitResult loglik={self.fit.loglik:.4f}>"
