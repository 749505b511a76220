from django.http import HttpResponse, JsonResponse

from .models import Note


def index(request):
    return JsonResponse({"notes": list(Note.objects.values_list("text", flat=True))})


def healthz(request):
    return HttpResponse("ok")
