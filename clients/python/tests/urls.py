from django.urls import path

from tests.shop import views

urlpatterns = [path("orders/", views.create_order)]
