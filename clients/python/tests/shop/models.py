from django.db import models


class Order(models.Model):
    customer = models.TextField()
    confirmed = models.BooleanField(default=False)

    class Meta:
        app_label = "shop"
