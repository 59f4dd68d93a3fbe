"""The reporter page's words in English and Spanish, and how a request picks its language
(`?lang=` first, then `Accept-Language`, then English)."""

from __future__ import annotations

from starlette.requests import Request

LANGUAGES = ("en", "es")
DEFAULT_LANGUAGE = "en"


def pick_language(request: Request, explicit: str | None = None) -> str:
    """`explicit` (a form's hidden field), else `?lang=`, else the best of `Accept-Language`."""
    for candidate in (explicit, request.query_params.get("lang")):
        if candidate and candidate.lower()[:2] in LANGUAGES:
            return candidate.lower()[:2]
    return from_accept_language(request.headers.get("accept-language", ""))


def from_accept_language(header: str) -> str:
    """The language of ours the header ranks highest (`es-MX;q=0.9, en;q=0.8` → `es`)."""
    best, best_q = DEFAULT_LANGUAGE, 0.0
    for position, item in enumerate(header.split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        # Earlier entries win ties, as the header's order means.
        quality -= position * 1e-6
        if primary in LANGUAGES and quality > best_q:
            best, best_q = primary, quality
    return best


STATUS = {
    "en": {
        "new": "Received: it will be looked at soon.",
        "triage": "Being reviewed by the people who handle reports.",
        "investigating": "Being investigated.",
        "decision": "The investigation is finished; a decision is being made.",
        "closed": "Closed.",
        "referred": "Passed to another body that can act on it.",
        "dismissed": "Closed without further action.",
        "deleted": "Closed; its content has been deleted.",
    },
    "es": {
        "new": "Recibida: se revisará pronto.",
        "triage": "En revisión por las personas que atienden las denuncias.",
        "investigating": "En investigación.",
        "decision": "La investigación terminó; se está tomando una decisión.",
        "closed": "Cerrada.",
        "referred": "Remitida a otro organismo que puede actuar.",
        "dismissed": "Cerrada sin más acciones.",
        "deleted": "Cerrada; su contenido fue eliminado.",
    },
}

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "other_language": "Español",
        "nav_label": "Reporting pages",
        "other_language_code": "es",
        "quick_exit": "Quick exit",
        "quick_exit_hint": "Leaves this page at once for a neutral site.",
        "skip": "Skip to the main content",
        "report_title": "Tell us what happened",
        "report_intro": (
            "You can report harassment, abuse or other misconduct to {org} here. Nothing is "
            "sent until you press “Send report”. This page keeps no record of your address "
            "or your device."
        ),
        "help_now": "If you need help now",
        "help_after": "Help and support",
        "policy": "Read the policy",
        "outside_reviewer": "Outside reviewer",
        "mode_legend": "How do you want to report?",
        "mode_anonymous": "Anonymously",
        "mode_anonymous_help": (
            "Nobody, not even the people handling your report, learns who you are. You get a "
            "receipt code to follow your report and answer questions. Leave out details that "
            "would identify you if you want to stay unknown."
        ),
        "mode_confidential": "Confidentially",
        "mode_confidential_help": (
            "Only the people handling your report see your name and how to reach you. It is "
            "not shared with the people you report. You also get a receipt code."
        ),
        "mode_identified_title": "With your name, openly",
        "mode_identified": "With your name, as a staff member (sign in below)",
        "mode_identified_help": (
            "For staff of this organisation: the report is filed under your staff account, "
            "and you follow it in the staff app, not with a receipt code. Sign in with your "
            "staff email and password below; you stay signed in only while it is sent."
        ),
        "staff_legend": "Your staff sign-in (reports with your name only)",
        "staff_help": "Leave these empty unless you chose to report with your name.",
        "staff_email": "Staff email",
        "staff_password": "Password",
        "staff_sso": (
            "Your organisation signs staff in with single sign-on. If you have no password "
            "for Upstander, report with your name from the staff app instead."
        ),
        "error_staff_sign_in": "To report with your name, enter your staff email and password.",
        "error_staff_credentials": (
            "That email and password did not sign you in. Check them, or choose another way "
            "to report."
        ),
        "identified_sent_title": "Your report was sent with your name",
        "identified_sent": (
            "Thank you. The people who handle reports can see it is yours; follow it and "
            "answer their questions in the staff app. You are not signed in on this page."
        ),
        "contact_legend": "Your name and how to reach you (confidential reports only)",
        "contact_help": "Leave these empty for an anonymous report.",
        "reporter_name": "Your name",
        "reporter_contact": "Email or phone",
        "categories_legend": "What kind of problem is it? (optional; choose any that fit)",
        "description": "What happened?",
        "description_help": "In your own words. Include what was said or done, and by whom.",
        "occurred_at": "When did it happen? (optional)",
        "occurred_at_help": "The date, or the first date if it happened more than once.",
        "location": "Where did it happen? (optional)",
        "more_questions": "A few more questions (optional)",
        "no_answer": "No answer",
        "people": "Who was involved? (optional)",
        "people_help": "Names or roles, one per line.",
        "witnesses": "Did anyone see or hear it? (optional)",
        "witnesses_help": "Names or roles of witnesses, one per line.",
        "keep_out": "Is there anyone who should not see this report? (optional)",
        "keep_out_help": (
            "Names or roles, one per line. This goes at the top of your report, so that the "
            "person who first receives it can keep it away from them."
        ),
        "desired_outcome": "What would you like to happen? (optional)",
        "attachments": "Attachments (optional)",
        "attachments_help": "Photos, screenshots, documents or recordings. Up to {count} files.",
        "send_report": "Send report",
        "required": "required",
        "errors_title": "There is a problem",
        "receipt_title": "Your report was sent",
        "receipt_label": "Your receipt code",
        "receipt_warning": (
            "This code is the only key to your report. It is shown only this once and cannot "
            "be recovered. Write it down, or keep it where only you can reach it. With it you "
            "can read replies, answer questions and add files."
        ),
        "receipt_next": (
            "To follow up later, go to the follow-up page and enter your code. When you have "
            "written it down, press the button below: the code is then gone from this window."
        ),
        "receipt_done": "I have written it down",
        "receipt_gone_title": "The receipt code was already shown",
        "receipt_gone": (
            "For your safety a receipt code is shown only once, and this page no longer has "
            "it. If you did not keep it, you can send a new report."
        ),
        "follow_up_link": "Follow up on a report",
        "report_link": "Make a report",
        "follow_up_title": "Follow up on your report",
        "follow_up_intro": (
            "Enter the receipt code you were given when you reported. You will stay signed in "
            "for {minutes} minutes at most, on this browser only."
        ),
        "receipt_code": "Receipt code",
        "receipt_code_help": "For example K7QW2-9XMDA-4RT0P-ZZ81C. Dashes and case do not matter.",
        "sign_in": "Open my report",
        "sign_out": "Sign out",
        "signed_out": "You are signed out.",
        "session_ended": "Your session ended. Enter your receipt code again to continue.",
        "invalid_receipt": "This receipt code does not open a report here. Check it and try again.",
        "too_many": "Too many attempts. Wait {seconds} seconds and try again.",
        "unavailable": "This cannot be done right now. Please try again in a few minutes.",
        "status_title": "Status",
        "case_number": "Reference",
        "received": "Received",
        "acknowledge_by": "You will hear that it was received by",
        "feedback_by": "You will be told what is being done by",
        "not_opened": (
            "Your report was received and is waiting to be opened by the people who handle "
            "reports. Come back later."
        ),
        "messages_title": "Messages",
        "no_messages": "No messages yet.",
        "author_reporter": "You",
        "author_handler": "The people handling your report",
        "author_system": "Automatic message",
        "reply": "Write a message",
        "send_message": "Send message",
        "message_sent": "Your message was sent.",
        "add_file": "Add a file",
        "file": "File",
        "upload": "Upload file",
        "file_added": "Your file was added.",
        "checkins_title": "Check-ins about retaliation",
        "checkin_question": (
            "Since you reported, have you faced retaliation (for example fewer shifts, a "
            "demotion, a bad review, threats or being shut out)?"
        ),
        "yes": "Yes",
        "no": "No",
        "checkin_details": "What happened? (optional)",
        "checkin_send": "Send answer",
        "checkin_answered": "Answered on {date}: {answer}.",
        "checkin_thanks": "Thank you, your answer was recorded.",
        "asked": "Asked on {date}",
        "csrf_title": "This form has expired",
        "csrf": (
            "For your safety the form could not be accepted. Go back, reload the page and "
            "try again. This page needs cookies from this site to work."
        ),
        "not_found_title": "Page not found",
        "not_found": "There is no reporting page at this address. Check the link you were given.",
        "error_description": "Please say what happened.",
        "error_mode": "Choose how you want to report.",
        "error_contact": "A confidential report needs your name and a way to reach you.",
        "error_too_long": "This is too long.",
        "error_too_many": "Please list at most {count}.",
        "error_date": "Enter a date such as 2026-11-20.",
        "error_code": "Enter your receipt code.",
        "error_message": "Write a message first.",
        "error_file": "Choose a file.",
        "error_answer": "Choose yes or no.",
        "error_upload": "The file could not be added: {detail}",
        "error_report": "The report could not be sent: {detail}",
        "error_send": "This could not be sent: {detail}",
    },
    "es": {
        "other_language": "English",
        "nav_label": "Páginas de denuncia",
        "other_language_code": "en",
        "quick_exit": "Salida rápida",
        "quick_exit_hint": "Sale de esta página al instante hacia un sitio neutral.",
        "skip": "Saltar al contenido principal",
        "report_title": "Cuéntenos qué pasó",
        "report_intro": (
            "Aquí puede denunciar acoso, abuso u otra conducta indebida ante {org}. No se envía "
            "nada hasta que pulse «Enviar denuncia». Esta página no guarda su dirección ni "
            "datos de su dispositivo."
        ),
        "help_now": "Si necesita ayuda ahora",
        "help_after": "Ayuda y apoyo",
        "policy": "Lea la política",
        "outside_reviewer": "Revisor externo",
        "mode_legend": "¿Cómo quiere denunciar?",
        "mode_anonymous": "De forma anónima",
        "mode_anonymous_help": (
            "Nadie, ni siquiera quienes atienden su denuncia, sabrá quién es usted. Recibirá un "
            "código de recibo para seguir su denuncia y responder preguntas. Omita los detalles "
            "que le identifiquen si quiere seguir sin ser conocido/a."
        ),
        "mode_confidential": "De forma confidencial",
        "mode_confidential_help": (
            "Solo quienes atienden su denuncia verán su nombre y cómo contactarle. No se "
            "comparte con las personas denunciadas. También recibirá un código de recibo."
        ),
        "mode_identified_title": "Con su nombre, abiertamente",
        "mode_identified": "Con su nombre, como miembro del personal (inicie sesión abajo)",
        "mode_identified_help": (
            "Para el personal de esta organización: la denuncia queda a nombre de su cuenta y "
            "la sigue en la aplicación del personal, no con un código de recibo. Inicie sesión "
            "abajo con su correo y contraseña; la sesión dura solo mientras se envía."
        ),
        "staff_legend": "Su acceso de personal (solo denuncias con su nombre)",
        "staff_help": "Déjelos vacíos salvo que haya elegido denunciar con su nombre.",
        "staff_email": "Correo del personal",
        "staff_password": "Contraseña",
        "staff_sso": (
            "Su organización usa inicio de sesión único. Si no tiene contraseña de Upstander, "
            "denuncie con su nombre desde la aplicación del personal."
        ),
        "error_staff_sign_in": (
            "Para denunciar con su nombre, escriba su correo del personal y su contraseña."
        ),
        "error_staff_credentials": (
            "Ese correo y esa contraseña no iniciaron sesión. Revíselos o elija otra forma de "
            "denunciar."
        ),
        "identified_sent_title": "Su denuncia se envió con su nombre",
        "identified_sent": (
            "Gracias. Quienes atienden las denuncias ven que es suya; sígala y responda sus "
            "preguntas en la aplicación del personal. No tiene sesión iniciada en esta página."
        ),
        "contact_legend": "Su nombre y cómo contactarle (solo denuncias confidenciales)",
        "contact_help": "Déjelos vacíos para una denuncia anónima.",
        "reporter_name": "Su nombre",
        "reporter_contact": "Correo o teléfono",
        "categories_legend": "¿Qué tipo de problema es? (opcional; elija los que correspondan)",
        "description": "¿Qué pasó?",
        "description_help": "Con sus palabras. Incluya qué se dijo o hizo, y quién.",
        "occurred_at": "¿Cuándo ocurrió? (opcional)",
        "occurred_at_help": "La fecha, o la primera si ocurrió más de una vez.",
        "location": "¿Dónde ocurrió? (opcional)",
        "more_questions": "Algunas preguntas más (opcional)",
        "no_answer": "Sin respuesta",
        "people": "¿Quiénes estuvieron involucrados? (opcional)",
        "people_help": "Nombres o cargos, uno por línea.",
        "witnesses": "¿Alguien lo vio o lo escuchó? (opcional)",
        "witnesses_help": "Nombres o cargos de testigos, uno por línea.",
        "keep_out": "¿Hay alguien que no deba ver esta denuncia? (opcional)",
        "keep_out_help": (
            "Nombres o cargos, uno por línea. Va al principio de su denuncia, para que quien "
            "la reciba primero pueda mantenerla lejos de esas personas."
        ),
        "desired_outcome": "¿Qué le gustaría que pasara? (opcional)",
        "attachments": "Archivos adjuntos (opcional)",
        "attachments_help": (
            "Fotos, capturas de pantalla, documentos o grabaciones. Hasta {count} archivos."
        ),
        "send_report": "Enviar denuncia",
        "required": "obligatorio",
        "errors_title": "Hay un problema",
        "receipt_title": "Su denuncia fue enviada",
        "receipt_label": "Su código de recibo",
        "receipt_warning": (
            "Este código es la única llave de su denuncia. Se muestra solo esta vez y no se "
            "puede recuperar. Anótelo o guárdelo donde solo usted pueda verlo. Con él puede "
            "leer respuestas, contestar preguntas y añadir archivos."
        ),
        "receipt_next": (
            "Para hacer seguimiento, vaya a la página de seguimiento e ingrese su código. Cuando "
            "lo haya anotado, pulse el botón de abajo: el código desaparece de esta ventana."
        ),
        "receipt_done": "Ya lo anoté",
        "receipt_gone_title": "El código de recibo ya se mostró",
        "receipt_gone": (
            "Por su seguridad, el código de recibo se muestra una sola vez y esta página ya no "
            "lo tiene. Si no lo guardó, puede enviar una nueva denuncia."
        ),
        "follow_up_link": "Seguimiento de una denuncia",
        "report_link": "Hacer una denuncia",
        "follow_up_title": "Seguimiento de su denuncia",
        "follow_up_intro": (
            "Ingrese el código de recibo que recibió al denunciar. Su sesión dura como máximo "
            "{minutes} minutos, solo en este navegador."
        ),
        "receipt_code": "Código de recibo",
        "receipt_code_help": (
            "Por ejemplo K7QW2-9XMDA-4RT0P-ZZ81C. No importan los guiones ni las mayúsculas."
        ),
        "sign_in": "Abrir mi denuncia",
        "sign_out": "Cerrar sesión",
        "signed_out": "Cerró la sesión.",
        "session_ended": "Su sesión terminó. Ingrese de nuevo su código de recibo para continuar.",
        "invalid_receipt": "Este código de recibo no abre ninguna denuncia aquí. Revíselo.",
        "too_many": "Demasiados intentos. Espere {seconds} segundos y vuelva a intentarlo.",
        "unavailable": "No se puede hacer ahora. Inténtelo de nuevo en unos minutos.",
        "status_title": "Estado",
        "case_number": "Referencia",
        "received": "Recibida",
        "acknowledge_by": "Se le confirmará la recepción a más tardar el",
        "feedback_by": "Se le dirá qué se está haciendo a más tardar el",
        "not_opened": (
            "Su denuncia fue recibida y espera a que la abran las personas que atienden las "
            "denuncias. Vuelva más tarde."
        ),
        "messages_title": "Mensajes",
        "no_messages": "Todavía no hay mensajes.",
        "author_reporter": "Usted",
        "author_handler": "Quienes atienden su denuncia",
        "author_system": "Mensaje automático",
        "reply": "Escribir un mensaje",
        "send_message": "Enviar mensaje",
        "message_sent": "Su mensaje fue enviado.",
        "add_file": "Añadir un archivo",
        "file": "Archivo",
        "upload": "Subir archivo",
        "file_added": "Su archivo fue añadido.",
        "checkins_title": "Seguimiento sobre represalias",
        "checkin_question": (
            "Desde que denunció, ¿ha sufrido represalias (por ejemplo menos turnos, un descenso, "
            "una mala evaluación, amenazas o exclusión)?"
        ),
        "yes": "Sí",
        "no": "No",
        "checkin_details": "¿Qué pasó? (opcional)",
        "checkin_send": "Enviar respuesta",
        "checkin_answered": "Respondida el {date}: {answer}.",
        "checkin_thanks": "Gracias, su respuesta quedó registrada.",
        "asked": "Preguntada el {date}",
        "csrf_title": "Este formulario caducó",
        "csrf": (
            "Por su seguridad no se pudo aceptar el formulario. Vuelva atrás, recargue la "
            "página e inténtelo de nuevo. Esta página necesita cookies de este sitio."
        ),
        "not_found_title": "Página no encontrada",
        "not_found": "No hay una página de denuncias en esta dirección. Revise el enlace.",
        "error_description": "Cuente qué pasó.",
        "error_mode": "Elija cómo quiere denunciar.",
        "error_contact": "Una denuncia confidencial necesita su nombre y una forma de contactarle.",
        "error_too_long": "Es demasiado largo.",
        "error_too_many": "Indique como máximo {count}.",
        "error_date": "Ingrese una fecha como 2026-11-20.",
        "error_code": "Ingrese su código de recibo.",
        "error_message": "Escriba un mensaje primero.",
        "error_file": "Elija un archivo.",
        "error_answer": "Elija sí o no.",
        "error_upload": "No se pudo añadir el archivo: {detail}",
        "error_report": "No se pudo enviar la denuncia: {detail}",
        "error_send": "No se pudo enviar: {detail}",
    },
}


# The private record's and the escrow's words (escrow_pages.py), kept in their own module.
from upstander.gateway.web.escrow_words import TEXT as _ESCROW_TEXT  # noqa: E402

for _lang, _words in _ESCROW_TEXT.items():
    TEXT[_lang].update(_words)


def words(lang: str) -> dict[str, str]:
    return TEXT[lang if lang in TEXT else DEFAULT_LANGUAGE]
