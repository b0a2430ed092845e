// Reloads the page every 3 s while runs are open, unless someone is typing in a form.
setInterval(function(){var a=document.activeElement;if(!a||!/^(INPUT|SELECT|TEXTAREA)$/.test(a.tagName)){location.reload();}},3000);
