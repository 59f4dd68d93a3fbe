"""The words of the private record and matching escrow pages (escrow_pages.py), in English and
Spanish; `i18n.TEXT` takes them in, so every page (the main page's links too) has them."""

from __future__ import annotations

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "without_fear_title": "Not ready to report yet?",
        "record_link": "Keep a private record",
        "record_link_help": (
            "write down what happened, with the date and place, sealed so that only you can "
            "open it, with proof of when you wrote it. Turn it into a report when you choose."
        ),
        "escrow_link": "Hold my report until someone else names the same person",
        "escrow_link_help": (
            "nobody at the organisation sees your report until at least one other person "
            "names the same person, and then only if you decide to send it."
        ),
        "protected_title": "What is protected",
        "not_protected_title": "What is not",
        # The escrow, in the report form.
        "escrow_legend": "Or: hold my report until someone else names the same person",
        "escrow_form_help": (
            "Instead of sending your report now, we keep it sealed. Say who it is about by at "
            "least one of these. If someone else names the same person, you are told (come "
            "back with your receipt code) and you decide whether to send it."
        ),
        "escrow_more": "How holding a report works",
        "escrow_email": "Their work email",
        "escrow_phone": "Their phone number",
        "escrow_handle": "Their social media handle",
        "escrow_handle_help": "For example @name, with the platform below.",
        "escrow_platform": "Platform of the handle (for example x, instagram, slack)",
        "escrow_no_files": "A held report cannot carry files: add them after you send it.",
        "escrow_hold": "Hold my report (do not send it yet)",
        "escrow_error_identifiers": (
            "To hold your report, give at least one way to name the person: a work email, a "
            "phone number or a handle."
        ),
        "escrow_error_platform": "Say which platform the handle is on.",
        "escrow_error_files": (
            "A held report cannot carry files. Remove them, or send the report now."
        ),
        "escrow_error_hold": "Your report could not be held: {detail}",
        # The escrow, explained.
        "escrow_about_title": "Hold a report until someone else names the same person",
        "escrow_about_intro": (
            "Many people do not report a powerful person alone. Here you can write your report "
            "and hold it: nobody at the organisation sees it until at least one other, "
            "independent person names the same person, and even then only if you decide to "
            "send it."
        ),
        "escrow_how_title": "How it works",
        "escrow_how_1": (
            "Fill in the report form, name the person by their work email, phone or social "
            "media handle, and press “Hold my report”."
        ),
        "escrow_how_2": (
            "You get a receipt code, shown once. Keep it: it is the only way back to your "
            "held report."
        ),
        "escrow_how_3": (
            "Come back with the code to see the status: waiting, matched (someone else named "
            "the same person), sent, withdrawn or expired."
        ),
        "escrow_how_4": (
            "When it is matched, you decide alone whether to send it, anonymously or "
            "confidentially. You can withdraw it at any time until it is sent. If nothing "
            "happens, it expires after a period the organisation sets (a year unless it says "
            "otherwise)."
        ),
        "escrow_protected_1": (
            "Before a match, nobody at the organisation can see anything about your held "
            "report: not that it exists, not how many there are, not what it is about."
        ),
        "escrow_protected_2": (
            "The person you name is stored only as a keyed fingerprint, so the database alone "
            "does not say who is named. The other reporter never learns who you are, and you "
            "never learn who they are."
        ),
        "escrow_protected_3": (
            "Withdrawing or expiry destroys what you wrote. One person naming someone twice "
            "never counts as two."
        ),
        "escrow_not_protected_1": (
            "The people who run this service, holding its keys, could technically read held "
            "reports. This protects you from the organisation, not from its operators."
        ),
        "escrow_not_protected_2": (
            "Someone who names themselves could learn that somebody else named them (never "
            "who). Guessing is slowed down by limits, and nothing about the other report is "
            "ever shown."
        ),
        "escrow_not_protected_3": (
            "If you lose your receipt code nobody can open your held report for you."
        ),
        "escrow_go_form": "Go to the report form",
        "escrow_follow_up_link": "Check a held report",
        # The escrow's receipt.
        "escrow_receipt_title": "Your report is held",
        "escrow_receipt_intro": (
            "Nobody at the organisation can see it. If someone else names the same person, "
            "you decide whether to send it."
        ),
        "escrow_receipt_warning": (
            "Write this code down and keep it somewhere safe. It is shown only once and is the "
            "only way to check your held report, send it or withdraw it."
        ),
        "escrow_receipt_next": (
            "Come back from time to time to “Check a held report” and enter this code."
        ),
        # The escrow's follow-up.
        "escrow_follow_up_title": "Check a held report",
        "escrow_sign_in_intro": (
            "Enter the receipt code you were given when you held your report. Nothing is "
            "kept in this browser except a short session."
        ),
        "escrow_sign_in": "Check my held report",
        "escrow_invalid_receipt": "This receipt code does not open a report here. Check it.",
        "escrow_not_held": (
            "This receipt code belongs to a report that was sent, not to a held one. Follow it "
            "on the follow-up page."
        ),
        "escrow_status_waiting": "Waiting",
        "escrow_status_waiting_help": (
            "Nobody else has named this person yet. Your report stays sealed; nobody at the "
            "organisation can see it."
        ),
        "escrow_status_matched": "Matched",
        "escrow_status_matched_help": (
            "At least one other person has named the same person. You may now send your "
            "report, or withdraw it. Nothing is sent unless you choose."
        ),
        "escrow_status_released": "Sent",
        "escrow_status_released_help": (
            "Your report was sent to the people who handle reports. Follow it with the same "
            "receipt code."
        ),
        "escrow_status_withdrawn": "Withdrawn",
        "escrow_status_withdrawn_help": "You withdrew it. What you wrote has been destroyed.",
        "escrow_status_expired": "Expired",
        "escrow_status_expired_help": (
            "Nobody else named this person in time. What you wrote has been destroyed."
        ),
        "escrow_held_since": "Held since",
        "escrow_expires": "Expires on",
        "escrow_matched_on": "Matched on",
        "escrow_released_on": "Sent on",
        "escrow_follow_case": "Follow your report",
        "escrow_release_title": "Send your report",
        "escrow_release_intro": (
            "Choose how to send it. The other reporter decides on their own; their report and "
            "yours are linked for the people who handle them."
        ),
        "escrow_confidential_help": (
            "Only the people handling your report see your name and how to reach you. Fill in "
            "both below, or leave them empty to use the ones you gave when you held it."
        ),
        "escrow_identified_help": (
            "For staff who held this report signed in: it goes out under your staff account. "
            "Sign in below with your staff email and password; you stay signed in only while "
            "it is sent."
        ),
        "escrow_release": "Send my report",
        "escrow_released": "Your report was sent.",
        "escrow_error_release": "That could not be done: {detail}",
        "escrow_withdraw_title": "Withdraw it",
        "escrow_withdraw_intro": (
            "Withdrawing destroys what you wrote. It cannot be undone, and it will never be "
            "matched or sent."
        ),
        "escrow_withdraw_confirm": "I understand: destroy my held report.",
        "escrow_withdraw": "Withdraw my report",
        "escrow_withdrawn": "Your held report was withdrawn and destroyed.",
        "escrow_error_confirm": "Tick the box to confirm.",
        "page_too_many_title": "Too many requests",
        "page_too_many": "Too many attempts from here. Wait a minute and try again.",
        "escrow_follow_up_hint": "Did you hold your report instead of sending it? Check it here.",
        # The private record.
        "record_title": "Your private record",
        "record_intro": (
            "Write down what happened, when and where, with photos or documents if you have "
            "them. You get a record code: only it opens the record. You can add to it, "
            "download proof of when you wrote each part, delete it, or turn it into a report "
            "whenever you choose."
        ),
        "record_protected_1": (
            "Nobody at the organisation can read your record, and neither can the people who "
            "run this service: it is sealed with a key made from your code, and the code is "
            "never stored."
        ),
        "record_protected_2": (
            "Each part is signed with the time it was written. The proof you download shows "
            "when you wrote it, and that not one word has changed since."
        ),
        "record_protected_3": (
            "Deleting the record destroys its key: it cannot be recovered, even from backups."
        ),
        "record_not_protected_1": (
            "If you lose your record code, nobody can open the record for you."
        ),
        "record_not_protected_2": (
            "Anyone who has your code can read your record. While it is open in this browser "
            "(a quarter of an hour at most), anyone using this device can too: close it when "
            "you are done."
        ),
        "record_open_title": "Open your record",
        "record_code": "Record code",
        "record_code_help": (
            "The code you were given when you started the record. It stays open in this "
            "browser for {minutes} minutes at most."
        ),
        "record_open": "Open my record",
        "record_start_title": "Start a new record",
        "record_start": "Save my record",
        "record_text": "What happened?",
        "record_text_help": "In your own words. Include what was said or done, and by whom.",
        "record_code_title": "Your record is saved",
        "record_code_warning": (
            "Write this code down and keep it somewhere safe. It is shown only once, it is the "
            "only key to your record, and nobody (not even us) can recover it."
        ),
        "record_open_for": (
            "Your record is open in this browser for {minutes} minutes at most. Close it when "
            "you are done."
        ),
        "record_entries_title": "What you wrote",
        "record_written": "Written {time}",
        "record_happened": "happened on {date}",
        "record_download_file": "Download {name}",
        "record_proof_help": (
            "A file with each part's signed time and the public key that checks it, for you "
            "to keep or show anyone."
        ),
        "record_proof": "Download the proof of when I wrote it",
        "record_add_title": "Add to your record",
        "record_add": "Add to my record",
        "record_entry_added": "Your record was updated.",
        "record_report_title": "Turn it into a report",
        "record_report_intro": (
            "Send everything in your record as a report, with proof of when you first wrote "
            "it. Your record stays until you delete it."
        ),
        "record_report": "Send my record as a report",
        "record_delete_title": "Delete your record",
        "record_delete_confirm": "I understand: destroy my record. It cannot be undone.",
        "record_delete": "Delete my record",
        "record_deleted": "Your record was deleted.",
        "record_close": "Close my record",
        "record_closed": "Your record is closed in this browser.",
        "record_session_ended": "Your record was closed after a while. Enter your code again.",
        "record_error_text": "Write what happened.",
        "record_error_save": "Your record could not be saved: {detail}",
        "record_error_code": "Enter your record code.",
        "record_invalid_code": "This code does not open a record here. Check it.",
        "record_error_confirm": "Tick the box to confirm.",
        "confirm_legend": "Are you sure?",
    },
    "es": {
        "without_fear_title": "¿Todavía no está listo para denunciar?",
        "record_link": "Llevar un registro privado",
        "record_link_help": (
            "anote lo que pasó, con la fecha y el lugar, sellado para que solo usted pueda "
            "abrirlo, con prueba de cuándo lo escribió. Conviértalo en denuncia cuando decida."
        ),
        "escrow_link": "Guardar mi denuncia hasta que otra persona nombre a la misma persona",
        "escrow_link_help": (
            "nadie en la organización ve su denuncia hasta que al menos otra persona nombre a "
            "la misma persona, y solo si usted decide enviarla."
        ),
        "protected_title": "Qué está protegido",
        "not_protected_title": "Qué no",
        "escrow_legend": (
            "O bien: guardar mi denuncia hasta que otra persona nombre a la misma persona"
        ),
        "escrow_form_help": (
            "En lugar de enviar su denuncia ahora, la guardamos sellada. Diga de quién trata "
            "con al menos uno de estos datos. Si otra persona nombra a la misma persona, se le "
            "avisa (vuelva con su código de recibo) y usted decide si la envía."
        ),
        "escrow_more": "Cómo funciona guardar una denuncia",
        "escrow_email": "Su correo electrónico de trabajo",
        "escrow_phone": "Su número de teléfono",
        "escrow_handle": "Su usuario en redes sociales",
        "escrow_handle_help": "Por ejemplo @nombre, con la plataforma abajo.",
        "escrow_platform": "Plataforma del usuario (por ejemplo x, instagram, slack)",
        "escrow_no_files": (
            "Una denuncia guardada no puede llevar archivos: añádalos después de enviarla."
        ),
        "escrow_hold": "Guardar mi denuncia (no enviarla todavía)",
        "escrow_error_identifiers": (
            "Para guardar su denuncia, dé al menos una forma de nombrar a la persona: un "
            "correo de trabajo, un teléfono o un usuario."
        ),
        "escrow_error_platform": "Indique en qué plataforma está el usuario.",
        "escrow_error_files": (
            "Una denuncia guardada no puede llevar archivos. Quítelos o envíe la denuncia ahora."
        ),
        "escrow_error_hold": "No se pudo guardar su denuncia: {detail}",
        "escrow_about_title": "Guardar una denuncia hasta que otra persona nombre a la misma",
        "escrow_about_intro": (
            "Muchas personas no denuncian solas a alguien con poder. Aquí puede escribir su "
            "denuncia y guardarla: nadie en la organización la ve hasta que al menos otra "
            "persona, independiente, nombre a la misma persona, y aun entonces solo si usted "
            "decide enviarla."
        ),
        "escrow_how_title": "Cómo funciona",
        "escrow_how_1": (
            "Llene el formulario de denuncia, nombre a la persona por su correo de trabajo, "
            "teléfono o usuario en redes, y pulse “Guardar mi denuncia”."
        ),
        "escrow_how_2": (
            "Recibe un código de recibo, que se muestra una sola vez. Guárdelo: es la única "
            "forma de volver a su denuncia guardada."
        ),
        "escrow_how_3": (
            "Vuelva con el código para ver el estado: en espera, coincidencia (otra persona "
            "nombró a la misma), enviada, retirada o vencida."
        ),
        "escrow_how_4": (
            "Cuando hay coincidencia, usted decide por su cuenta si la envía, de forma anónima o "
            "confidencial. Puede retirarla en cualquier momento antes de enviarla. Si no pasa "
            "nada, vence tras un plazo que fija la organización (un año salvo que diga otra "
            "cosa)."
        ),
        "escrow_protected_1": (
            "Antes de una coincidencia, nadie en la organización puede ver nada de su denuncia "
            "guardada: ni que existe, ni cuántas hay, ni de qué trata."
        ),
        "escrow_protected_2": (
            "La persona que nombra se guarda solo como una huella con clave, así que la base "
            "de datos por sí sola no dice a quién se nombra. La otra persona que denuncia "
            "nunca sabe quién es usted, ni usted quién es ella."
        ),
        "escrow_protected_3": (
            "Retirarla o su vencimiento destruyen lo que escribió. Una misma persona que "
            "nombra a alguien dos veces nunca cuenta como dos."
        ),
        "escrow_not_protected_1": (
            "Quienes operan este servicio, con sus claves, podrían técnicamente leer las "
            "denuncias guardadas. Esto le protege de la organización, no de sus operadores."
        ),
        "escrow_not_protected_2": (
            "Alguien que se nombre a sí mismo podría saber que otra persona lo nombró (nunca "
            "quién). Los límites frenan los intentos, y nunca se muestra nada de la otra "
            "denuncia."
        ),
        "escrow_not_protected_3": (
            "Si pierde su código de recibo, nadie puede abrir su denuncia guardada por usted."
        ),
        "escrow_go_form": "Ir al formulario de denuncia",
        "escrow_follow_up_link": "Consultar una denuncia guardada",
        "escrow_receipt_title": "Su denuncia está guardada",
        "escrow_receipt_intro": (
            "Nadie en la organización puede verla. Si otra persona nombra a la misma persona, "
            "usted decide si la envía."
        ),
        "escrow_receipt_warning": (
            "Anote este código y guárdelo en un lugar seguro. Se muestra una sola vez y es la "
            "única forma de consultar su denuncia guardada, enviarla o retirarla."
        ),
        "escrow_receipt_next": (
            "Vuelva de vez en cuando a “Consultar una denuncia guardada” e ingrese este código."
        ),
        "escrow_follow_up_title": "Consultar una denuncia guardada",
        "escrow_sign_in_intro": (
            "Ingrese el código de recibo que recibió al guardar su denuncia. En este navegador "
            "no queda nada salvo una sesión corta."
        ),
        "escrow_sign_in": "Consultar mi denuncia guardada",
        "escrow_invalid_receipt": "Este código de recibo no abre ninguna denuncia aquí. Revíselo.",
        "escrow_not_held": (
            "Este código de recibo es de una denuncia que se envió, no de una guardada. "
            "Sígala en la página de seguimiento."
        ),
        "escrow_status_waiting": "En espera",
        "escrow_status_waiting_help": (
            "Nadie más ha nombrado a esta persona todavía. Su denuncia sigue sellada; nadie en "
            "la organización puede verla."
        ),
        "escrow_status_matched": "Coincidencia",
        "escrow_status_matched_help": (
            "Al menos otra persona nombró a la misma persona. Ahora puede enviar su denuncia o "
            "retirarla. No se envía nada si usted no lo decide."
        ),
        "escrow_status_released": "Enviada",
        "escrow_status_released_help": (
            "Su denuncia se envió a quienes atienden las denuncias. Sígala con el mismo código "
            "de recibo."
        ),
        "escrow_status_withdrawn": "Retirada",
        "escrow_status_withdrawn_help": "Usted la retiró. Lo que escribió fue destruido.",
        "escrow_status_expired": "Vencida",
        "escrow_status_expired_help": (
            "Nadie más nombró a esta persona a tiempo. Lo que escribió fue destruido."
        ),
        "escrow_held_since": "Guardada desde",
        "escrow_expires": "Vence el",
        "escrow_matched_on": "Coincidencia el",
        "escrow_released_on": "Enviada el",
        "escrow_follow_case": "Seguir su denuncia",
        "escrow_release_title": "Enviar su denuncia",
        "escrow_release_intro": (
            "Elija cómo enviarla. La otra persona decide por su cuenta; su denuncia y la suya "
            "quedan vinculadas para quienes las atienden."
        ),
        "escrow_confidential_help": (
            "Solo quienes atienden su denuncia ven su nombre y cómo contactarle. Llene ambos "
            "campos abajo, o déjelos vacíos para usar los que dio al guardarla."
        ),
        "escrow_identified_help": (
            "Para el personal que guardó esta denuncia con su sesión iniciada: sale a nombre de "
            "su cuenta. Inicie sesión abajo con su correo y contraseña; la sesión dura solo "
            "mientras se envía."
        ),
        "escrow_release": "Enviar mi denuncia",
        "escrow_released": "Su denuncia fue enviada.",
        "escrow_error_release": "No se pudo hacer: {detail}",
        "escrow_withdraw_title": "Retirarla",
        "escrow_withdraw_intro": (
            "Retirarla destruye lo que escribió. No se puede deshacer, y nunca tendrá "
            "coincidencias ni se enviará."
        ),
        "escrow_withdraw_confirm": "Entiendo: destruir mi denuncia guardada.",
        "escrow_withdraw": "Retirar mi denuncia",
        "escrow_withdrawn": "Su denuncia guardada fue retirada y destruida.",
        "escrow_error_confirm": "Marque la casilla para confirmar.",
        "page_too_many_title": "Demasiadas solicitudes",
        "page_too_many": "Demasiados intentos desde aquí. Espere un minuto y vuelva a intentarlo.",
        "escrow_follow_up_hint": "¿Guardó su denuncia en lugar de enviarla? Consúltela aquí.",
        "record_title": "Su registro privado",
        "record_intro": (
            "Anote lo que pasó, cuándo y dónde, con fotos o documentos si los tiene. Recibe un "
            "código de registro: solo él abre el registro. Puede añadir, descargar la prueba "
            "de cuándo escribió cada parte, borrarlo o convertirlo en denuncia cuando decida."
        ),
        "record_protected_1": (
            "Nadie en la organización puede leer su registro, ni quienes operan este "
            "servicio: está sellado con una clave hecha a partir de su código, y el código "
            "nunca se guarda."
        ),
        "record_protected_2": (
            "Cada parte se firma con la hora en que se escribió. La prueba que descarga "
            "muestra cuándo la escribió y que no ha cambiado ni una palabra desde entonces."
        ),
        "record_protected_3": (
            "Borrar el registro destruye su clave: no se puede recuperar, ni de las copias de "
            "seguridad."
        ),
        "record_not_protected_1": (
            "Si pierde su código de registro, nadie puede abrir el registro por usted."
        ),
        "record_not_protected_2": (
            "Quien tenga su código puede leer su registro. Mientras está abierto en este "
            "navegador (un cuarto de hora como máximo), también quien use este dispositivo: "
            "ciérrelo al terminar."
        ),
        "record_open_title": "Abrir su registro",
        "record_code": "Código de registro",
        "record_code_help": (
            "El código que recibió al empezar el registro. Queda abierto en este navegador "
            "{minutes} minutos como máximo."
        ),
        "record_open": "Abrir mi registro",
        "record_start_title": "Empezar un registro nuevo",
        "record_start": "Guardar mi registro",
        "record_text": "¿Qué pasó?",
        "record_text_help": "Con sus palabras. Incluya qué se dijo o se hizo, y quién.",
        "record_code_title": "Su registro está guardado",
        "record_code_warning": (
            "Anote este código y guárdelo en un lugar seguro. Se muestra una sola vez, es la "
            "única llave de su registro y nadie (ni nosotros) puede recuperarlo."
        ),
        "record_open_for": (
            "Su registro está abierto en este navegador {minutes} minutos como máximo. "
            "Ciérrelo al terminar."
        ),
        "record_entries_title": "Lo que escribió",
        "record_written": "Escrito el {time}",
        "record_happened": "ocurrió el {date}",
        "record_download_file": "Descargar {name}",
        "record_proof_help": (
            "Un archivo con la hora firmada de cada parte y la clave pública que la comprueba, "
            "para guardarlo o mostrarlo a quien quiera."
        ),
        "record_proof": "Descargar la prueba de cuándo lo escribí",
        "record_add_title": "Añadir a su registro",
        "record_add": "Añadir a mi registro",
        "record_entry_added": "Su registro fue actualizado.",
        "record_report_title": "Convertirlo en denuncia",
        "record_report_intro": (
            "Envíe todo su registro como denuncia, con la prueba de cuándo lo escribió por "
            "primera vez. Su registro sigue hasta que usted lo borre."
        ),
        "record_report": "Enviar mi registro como denuncia",
        "record_delete_title": "Borrar su registro",
        "record_delete_confirm": "Entiendo: destruir mi registro. No se puede deshacer.",
        "record_delete": "Borrar mi registro",
        "record_deleted": "Su registro fue borrado.",
        "record_close": "Cerrar mi registro",
        "record_closed": "Su registro está cerrado en este navegador.",
        "record_session_ended": ("Su registro se cerró tras un rato. Ingrese su código de nuevo."),
        "record_error_text": "Escriba qué pasó.",
        "record_error_save": "No se pudo guardar su registro: {detail}",
        "record_error_code": "Ingrese su código de registro.",
        "record_invalid_code": "Este código no abre ningún registro aquí. Revíselo.",
        "record_error_confirm": "Marque la casilla para confirmar.",
        "confirm_legend": "¿Lo confirma?",
    },
}
