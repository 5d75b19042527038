from django.contrib.admin.apps import AdminConfig


class ProductAdminConfig(AdminConfig):
    """Django's admin, with the product's own site (``config.admin_site``) as ``admin.site``."""

    default_site = "config.admin_site.ProductAdminSite"
