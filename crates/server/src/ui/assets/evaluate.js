// The checkpoint page: posts the evaluation job and opens its page.
(function(){
var button=document.getElementById('evaluate-button'),out=document.getElementById('evaluate-result');
button.addEventListener('click',function(){
 button.disabled=true;out.className='small';out.textContent='Queueing…';
 fetch('/ui/jobs',{method:'POST',headers:{'Content-Type':'application/json','X-Rollout-UI':'1'},body:document.getElementById('evaluate-data').textContent})
 .then(function(res){return res.json().then(function(j){return {ok:res.ok,j:j};});})
 .then(function(x){if(x.ok&&x.j.id){location.href='/jobs/'+encodeURIComponent(x.j.id);}
  else{var e=x.j.error||{},d=(e.details&&e.details.errors)||[];out.textContent=(e.message||'the job was refused')+(d.length?': '+d.map(function(p){return p.message;}).join('; '):'');out.className='small error-text';button.disabled=false;}})
 .catch(function(e){out.textContent=String(e);out.className='small error-text';button.disabled=false;});});
})();
